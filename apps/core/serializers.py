"""Serializers of shared shapes (the problem document), and the project's string fields."""

from django.core.validators import RegexValidator
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
    errors = serializers.JSONField(
        required=False,
        help_text='On validation failures: the messages for each field, `{"field": ["message"]}`, '
        "nested as the input is.",
    )
    index = serializers.IntegerField(
        required=False, help_text="In a batch: the position of the call that failed."
    )
    request_id = serializers.CharField(
        required=False, help_text="The request's X-Request-ID, to find it in the logs."
    )


class StringField(serializers.CharField):
    """A string, and only a string, kept as sent.

    DRF's CharField also takes a number and makes it a string, and trims spaces before checking
    lengths: the API's document says `type: string` with the lengths of what was sent. This field
    refuses anything but a string and checks the string as it came, so that what the document
    says of it (type, minLength, maxLength, pattern) is exactly what is checked.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# A valid email address as browsers check it (the WHATWG HTML standard's definition): a simple
# pattern the OpenAPI document can state exactly, where Django's EmailValidator has its own.
EMAIL_PATTERN = (
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)


class EmailAddressField(StringField):
    """An email address, as a string (see StringField), of the form browsers accept."""

    default_error_messages = {"invalid_email": "Enter a valid email address."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 254)
        super().__init__(**kwargs)
        self.validators.append(
            RegexValidator(EMAIL_PATTERN, message=self.error_messages["invalid_email"])
        )


class WholeNumberField(serializers.IntegerField):
    """A JSON integer, and nothing DRF would make one of (a string of digits, a boolean)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class NumberField(serializers.FloatField):
    """A JSON number, and nothing DRF would make one of (a string, a boolean)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)
