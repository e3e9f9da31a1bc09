"""Input of the example actions, validated before the action runs."""

from rest_framework import serializers


class PersonSerializer(serializers.Serializer):
    """A name and, optionally, an email: the input of `foo` and `bar`."""

    name = serializers.CharField(max_length=100)
    email = serializers.EmailField(required=False, allow_null=True, default=None)


class HelloSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class NumbersSerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=1_000_000)


class WaitSerializer(serializers.Serializer):
    seconds = serializers.FloatField(min_value=0, max_value=10)


class ExampleUserSerializer(serializers.Serializer):
    """What `bar` answers: the stored rows for the name."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField(allow_null=True)
    created_at = serializers.DateTimeField()
