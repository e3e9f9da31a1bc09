"""A broken action module: it runs on a database that is not configured."""

from rest_framework import serializers

from apps.actions import registry

actions = registry.module("elsewhere")


class Empty(serializers.Serializer):
    pass


@actions.action("count", input=Empty, using="reporting")
def count(db):
    return db.fetch_value("SELECT 1")
