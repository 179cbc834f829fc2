"""The jurisdiction's free-text legal footer goes: the legal text every email and portal
page carries is now each brand's approved footer module (kind `footer`, one per brand x
market x locale), signed by MLR like any content.

No data is carried over on purpose: a footer module only counts once reviewers signed it,
which no migration may do on their behalf. Authors create and submit one footer per brand,
market and locale (the demo loader does so for the demo); until one is approved, assembly
for that market refuses `missing_footer`.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("content", "0004_companions_signed_with_versions"),
    ]

    operations = [
        migrations.RemoveField(model_name="historicaljurisdiction", name="legal_footer"),
        migrations.RemoveField(model_name="jurisdiction", name="legal_footer"),
    ]
