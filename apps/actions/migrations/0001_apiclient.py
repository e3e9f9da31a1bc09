"""ApiClient moves here from apps.accounts, rows and keys unchanged.

The table stays where it is (`accounts_apiclient`) for this step: only Django's idea of which app
owns the model changes (accounts 0004 drops it from its state). 0002 then renames the table.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0003_usertoken"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiClient",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(max_length=100, unique=True)),
                        (
                            "key_prefix",
                            models.CharField(editable=False, max_length=16, unique=True),
                        ),
                        ("key_hash", models.CharField(editable=False, max_length=64)),
                        (
                            "is_active",
                            models.BooleanField(
                                default=True,
                                help_text="Clear to revoke the key: calls with it are refused.",
                                verbose_name="active",
                            ),
                        ),
                        (
                            "allowed_modules",
                            models.JSONField(
                                blank=True,
                                default=list,
                                help_text=(
                                    "Action modules this client may call; empty means all of them."
                                ),
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "last_used_at",
                            models.DateTimeField(blank=True, editable=False, null=True),
                        ),
                    ],
                    options={
                        "verbose_name": "API client",
                        "ordering": ["name"],
                        "db_table": "accounts_apiclient",
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
