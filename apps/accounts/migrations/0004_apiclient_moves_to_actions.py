"""ApiClient now belongs to apps.actions (actions 0001 took it over); the table is kept."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_usertoken"),
        ("actions", "0001_apiclient"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="ApiClient")],
            database_operations=[],
        ),
    ]
