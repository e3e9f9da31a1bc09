"""The API client table takes the owning app's name, and its content type follows the model, so
admin permissions and the admin's history of each client are kept."""

from django.db import migrations


def move_content_type(apps, schema_editor, *, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label=target, model="apiclient").exists():
        ContentType.objects.using(db).filter(app_label=source, model="apiclient").update(
            app_label=target
        )


def forwards(apps, schema_editor):
    move_content_type(apps, schema_editor, source="accounts", target="actions")


def backwards(apps, schema_editor):
    move_content_type(apps, schema_editor, source="actions", target="accounts")


class Migration(migrations.Migration):
    dependencies = [
        ("actions", "0001_apiclient"),
        ("accounts", "0004_apiclient_moves_to_actions"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelTable(name="apiclient", table=None),
        migrations.RunPython(forwards, backwards),
    ]
