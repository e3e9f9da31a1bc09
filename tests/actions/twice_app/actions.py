"""A broken action module: the same action name registered twice."""

from rest_framework import serializers

from apps.actions import registry

actions = registry.module("twice")


class Empty(serializers.Serializer):
    pass


@actions.action("same", input=Empty)
def first():
    return 1


@actions.action("same", input=Empty)
def second():
    return 2
