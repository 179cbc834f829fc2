"""Companions and exclusions move from the module to the version: they are signed content.

Each version gets its module's companions and exclusions as they are now (an exclusion was
symmetric between modules: each version keeps the modules its module excluded). Versions
locked before this change were signed without them: their signatures' sha256 no longer
matches what assembly reads when their module had any, and assembly refuses them
(`integrity_mismatch`) until a new version carrying the companions is approved.
"""

import django.db.models.deletion
import simple_history.models
from django.db import migrations, models


def copy_relations_to_versions(apps, schema_editor):
    ContentModule = apps.get_model("content", "ContentModule")
    ModuleVersion = apps.get_model("content", "ModuleVersion")
    for name in ("requires", "excludes"):
        module_links = getattr(ContentModule, name).through.objects.all()
        version_link = getattr(ModuleVersion, name).through
        versions_of = {}
        for module_id, version_id in ModuleVersion.objects.values_list("module_id", "id"):
            versions_of.setdefault(module_id, []).append(version_id)
        version_link.objects.bulk_create([
            version_link(moduleversion_id=version_id, contentmodule_id=link.to_contentmodule_id)
            for link in module_links for version_id in versions_of.get(link.from_contentmodule_id, ())
        ], ignore_conflicts=True)


def copy_relations_to_modules(apps, schema_editor):
    """Reverse: a module gets the relations of its newest version."""
    ContentModule = apps.get_model("content", "ContentModule")
    ModuleVersion = apps.get_model("content", "ModuleVersion")
    for name in ("requires", "excludes"):
        module_link = getattr(ContentModule, name).through
        newest = {}
        for version in ModuleVersion.objects.order_by("module_id", "number"):
            newest[version.module_id] = version
        module_link.objects.bulk_create([
            module_link(from_contentmodule_id=module_id, to_contentmodule_id=other_id)
            for module_id, version in newest.items()
            for other_id in getattr(version, name).values_list("id", flat=True)
        ], ignore_conflicts=True)



class Migration(migrations.Migration):

    dependencies = [
        ('content', '0003_protect_history_tables'),
    ]

    operations = [
        migrations.AddField(
            model_name='moduleversion',
            name='excludes',
            field=models.ManyToManyField(blank=True, help_text='Modules that must never appear in the same assembly as this one', related_name='excluded_by_versions', to='content.contentmodule'),
        ),
        migrations.AddField(
            model_name='moduleversion',
            name='requires',
            field=models.ManyToManyField(blank=True, help_text='Companions: modules that must travel with this one (e.g. the ISI)', related_name='required_by_versions', to='content.contentmodule'),
        ),
        migrations.CreateModel(
            name='HistoricalModuleVersion_excludes',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('m2m_history_id', models.AutoField(primary_key=True, serialize=False)),
                ('contentmodule', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='content.contentmodule')),
                ('history', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, to='content.historicalmoduleversion')),
                ('moduleversion', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='content.moduleversion')),
            ],
            options={
                'verbose_name': 'HistoricalModuleVersion_excludes',
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='HistoricalModuleVersion_requires',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('m2m_history_id', models.AutoField(primary_key=True, serialize=False)),
                ('contentmodule', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='content.contentmodule')),
                ('history', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, to='content.historicalmoduleversion')),
                ('moduleversion', models.ForeignKey(blank=True, db_constraint=False, db_tablespace='', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='content.moduleversion')),
            ],
            options={
                'verbose_name': 'HistoricalModuleVersion_requires',
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.RunPython(copy_relations_to_versions, copy_relations_to_modules),
        migrations.RemoveField(
            model_name='historicalcontentmodule_requires',
            name='from_contentmodule',
        ),
        migrations.RemoveField(
            model_name='historicalcontentmodule_requires',
            name='history',
        ),
        migrations.RemoveField(
            model_name='historicalcontentmodule_requires',
            name='to_contentmodule',
        ),
        migrations.RemoveField(
            model_name='contentmodule',
            name='excludes',
        ),
        migrations.RemoveField(
            model_name='contentmodule',
            name='requires',
        ),
        migrations.DeleteModel(
            name='HistoricalContentModule_excludes',
        ),
        migrations.DeleteModel(
            name='HistoricalContentModule_requires',
        ),
    ]
