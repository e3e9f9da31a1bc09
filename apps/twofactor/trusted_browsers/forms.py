"""The "Trust this browser" choice at the code step of a login."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import ngettext


class TrustBrowserForm(forms.Form):
    """One checkbox, posted with the code or the passkey of the login's second step."""

    trust_browser = forms.BooleanField(required=False)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")  # a checkbox's label is a sentence, not a heading
        super().__init__(*args, **kwargs)
        days = settings.TWO_FACTOR_TRUST_DAYS
        self.fields["trust_browser"].label = ngettext(
            "Trust this browser for %(days)d day", "Trust this browser for %(days)d days", days
        ) % {"days": days}

    @property
    def wanted(self) -> bool:
        """Whether the person ticked the box (and the site offers trust at all)."""
        return bool(
            settings.TWO_FACTOR_TRUST_DAYS
            and self.is_valid()
            and self.cleaned_data["trust_browser"]
        )
