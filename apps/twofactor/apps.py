from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class TwofactorConfig(AppConfig):
    """TOTP and passkey enrolment and login pages, the mobile API and the admin's second factor."""

    name = "apps.twofactor"
    label = "twofactor"
    verbose_name = _("Two-factor authentication")


class TwoFactorAdminConfig(admin_apps.AdminConfig):
    """`django.contrib.admin` whose default site (`admin.site`) demands a verified second factor.

    Every app keeps registering with `admin.site`; only the site's class changes.
    """

    default = False  # only for INSTALLED_APPS; apps.twofactor itself is TwofactorConfig
    default_site = "apps.twofactor.admin_site.TwoFactorAdminSite"
