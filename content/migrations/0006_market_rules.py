"""Market rules as data per jurisdiction (content.market_rules), seeded for the demo
markets (content/default_taxonomy.py MARKET_RULES); their history table is append-only on
PostgreSQL like every other (cms/append_only.py)."""

import django.db.models.deletion
import simple_history.models
from django.conf import settings
from django.db import migrations, models

from cms.append_only import protect_tables, unprotect_tables
from content.default_taxonomy import seed_market_rules

HISTORY_TABLE = "content_historicalmarketrule"


def seed(apps, schema_editor):
    seed_market_rules(apps)


def protect(apps, schema_editor):
    protect_tables(schema_editor, [HISTORY_TABLE])


def unprotect(apps, schema_editor):
    unprotect_tables(schema_editor, [HISTORY_TABLE])


class Migration(migrations.Migration):

    dependencies = [
        ('content', '0005_footers_are_modules'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='HistoricalMarketRule',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('kind', models.CharField(choices=[('fair_balance', "Fair balance: promotional claims travel with the brand's ISI"), ('audience_limit', 'Audience limit: restricted purposes only for some audiences')], max_length=30)),
                ('parameters', models.JSONField(blank=True, default=dict, help_text='Overrides of the kind\'s defaults, e.g. {"audiences": ["hcp", "pharmacist"]}')),
                ('rationale', models.CharField(blank=True, help_text='The law or code behind the rule, for reviewers', max_length=300)),
                ('active', models.BooleanField(default=True)),
                ('history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history_date', models.DateTimeField(db_index=True)),
                ('history_change_reason', models.CharField(max_length=100, null=True)),
                ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('jurisdiction', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='content.jurisdiction')),
            ],
            options={
                'verbose_name': 'historical market rule',
                'verbose_name_plural': 'historical market rules',
                'ordering': ('-history_date', '-history_id'),
                'get_latest_by': ('history_date', 'history_id'),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='MarketRule',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('fair_balance', "Fair balance: promotional claims travel with the brand's ISI"), ('audience_limit', 'Audience limit: restricted purposes only for some audiences')], max_length=30)),
                ('parameters', models.JSONField(blank=True, default=dict, help_text='Overrides of the kind\'s defaults, e.g. {"audiences": ["hcp", "pharmacist"]}')),
                ('rationale', models.CharField(blank=True, help_text='The law or code behind the rule, for reviewers', max_length=300)),
                ('active', models.BooleanField(default=True)),
                ('jurisdiction', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='market_rules', to='content.jurisdiction')),
            ],
            options={
                'ordering': ['jurisdiction__code', 'kind'],
                'constraints': [models.UniqueConstraint(fields=('jurisdiction', 'kind'), name='market_rule_once_per_kind')],
            },
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
        migrations.RunPython(protect, unprotect),
    ]
