"""The password pages: change (logged in, re-authenticated) and reset by email (Django's views
with this site's templates and forms)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse_lazy
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from apps.core.client_address import client_address

from ..forms import throttled_message
from ..trusted_browsers import cookies as trust_cookies
from ..views import PAGE_METHODS, _page, reauthentication_required, second_factor_checked
from . import limits
from .forms import AskForResetForm, ChangePasswordForm, ResetPasswordForm

PASSWORD_FIELDS = ("old_password", "new_password1", "new_password2")


@sensitive_post_parameters(*PASSWORD_FIELDS)
@never_cache
@second_factor_checked
@reauthentication_required
@require_http_methods(PAGE_METHODS)
def change_password_view(request: HttpRequest) -> HttpResponse:
    """The current password and a new one, within the re-authentication window. This session
    stays logged in (and verified); every other one, every API token and every trusted browser
    of the person ends."""
    form = ChangePasswordForm(request.user, request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        update_session_auth_hash(request, user)
        messages.success(
            request,
            gettext(
                "Password changed. You were logged out everywhere else; your API tokens and "
                "trusted browsers were revoked."
            ),
        )
        response = redirect("twofactor:overview")
        trust_cookies.forget(response)
        return response
    return _page(request, "twofactor/password_change.html", {"form": form}, form=form)


class ResetPasswordView(auth_views.PasswordResetView):
    """The address to send a reset link to. Whether or not it belongs to someone, the answer is
    the same redirect to the same page."""

    form_class = AskForResetForm
    template_name = "twofactor/password_reset.html"
    email_template_name = "twofactor/password_reset_email.txt"
    subject_template_name = "twofactor/password_reset_subject.txt"
    success_url = reverse_lazy("twofactor:password-reset-sent")

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        """Past PASSWORD_RESET_LIMIT requests from this client: 429 with Retry-After, the page
        saying how long to wait, and nothing sent."""
        retry_after = limits.client_retry_after(client_address(request.META))
        if retry_after is None:
            return super().post(request, *args, **kwargs)
        form = self.get_form()
        form.full_clean()
        form.add_error(None, throttled_message(retry_after))
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(retry_after)
        return response


class ResetPasswordSentView(auth_views.PasswordResetDoneView):
    template_name = "twofactor/password_reset_sent.html"


class ResetPasswordConfirmView(auth_views.PasswordResetConfirmView):
    """The link's new password. It logs nobody in (Django's default, kept on purpose): logging in
    still takes the password and then the second factor."""

    form_class = ResetPasswordForm
    post_reset_login = False
    template_name = "twofactor/password_reset_confirm.html"
    success_url = reverse_lazy("twofactor:password-reset-done")

    def get_form_kwargs(self) -> dict:
        return {**super().get_form_kwargs(), "request": self.request}


class ResetPasswordDoneView(auth_views.PasswordResetCompleteView):
    template_name = "twofactor/password_reset_done.html"
