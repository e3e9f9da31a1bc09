"""ApiClient moved from apps.accounts to apps.actions: rows, keys and permissions made before the
move keep working after it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.accounts.credentials import secret_digest
from apps.actions.models import ApiClient
from tests.actions.conftest import ActionCaller

BEFORE_THE_MOVE = [("accounts", "0003_usertoken")]
KEY = "0123456789ab.an-old-key-made-before-the-move-0123456789abcdefgh"


@pytest.fixture
def before_the_move(transactional_db):
    """The database as it was before ApiClient moved; migrated to the latest state after."""
    executor = MigrationExecutor(connection)
    executor.migrate([("actions", None)])  # unapplies accounts 0004 too, which depends on it
    yield executor.loader.project_state(BEFORE_THE_MOVE).apps
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_a_client_made_before_the_move_keeps_its_key_and_permissions(before_the_move, client):
    old_apps = before_the_move
    OldApiClient = old_apps.get_model("accounts", "ApiClient")
    OldApiClient.objects.create(
        name="old-service", key_prefix=KEY[:12], key_hash=secret_digest(KEY), allowed_modules=[]
    )
    OldContentType = old_apps.get_model("contenttypes", "ContentType")
    OldPermission = old_apps.get_model("auth", "Permission")
    old_type, _ = OldContentType.objects.get_or_create(app_label="accounts", model="apiclient")
    OldPermission.objects.get_or_create(
        content_type=old_type, codename="change_apiclient", defaults={"name": "Can change"}
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    moved = ApiClient.objects.get(name="old-service")
    assert moved._meta.db_table == "actions_apiclient"
    assert ActionCaller(client, KEY)("example/foo", {"name": "ana"}).status_code == 200
    permission = Permission.objects.get(codename="change_apiclient")
    assert permission.content_type == ContentType.objects.get_for_model(ApiClient)
