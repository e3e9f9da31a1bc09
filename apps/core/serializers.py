"""Serializers that document shared shapes in the OpenAPI schema."""

from rest_framework import serializers


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, the body of every API error."""

    type = serializers.CharField(
        help_text='"about:blank" when the status says it all; otherwise `/problems/<kind>`, '
        "e.g. `/problems/passkey-challenge-used`."
    )
    title = serializers.CharField(help_text="The HTTP reason phrase.")
    status = serializers.IntegerField()
    detail = serializers.CharField(required=False, help_text="What went wrong, in a sentence.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="On validation failures: the messages for each field.",
    )
    request_id = serializers.CharField(
        required=False, help_text="The request's X-Request-ID, to find it in the logs."
    )
