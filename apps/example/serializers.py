"""Input of the example actions, validated before the action runs."""

from rest_framework import serializers

from apps.core.serializers import EmailAddressField, NumberField, StringField, WholeNumberField


class PersonSerializer(serializers.Serializer):
    """A name and, optionally, an email: the input of `foo` and `bar`."""

    name = StringField(max_length=100)
    email = EmailAddressField(required=False, allow_null=True, default=None)


class HelloSerializer(serializers.Serializer):
    name = StringField(max_length=100)


class NumbersSerializer(serializers.Serializer):
    count = WholeNumberField(min_value=1, max_value=1_000_000)


class WaitSerializer(serializers.Serializer):
    seconds = NumberField(min_value=0, max_value=10)


class ExampleUserSerializer(serializers.Serializer):
    """What `bar` answers: the stored rows for the name."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.CharField(allow_null=True, help_text="The email as stored.")
    created_at = serializers.DateTimeField()
