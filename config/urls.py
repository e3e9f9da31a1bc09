"""The project's URLs: each app owns its own and is included here."""

from django.contrib import admin
from django.urls import include, path

from apps.core.openapi import served_on_first_request

urlpatterns = [
    path("", include("apps.core.urls")),
    path("", include("apps.actions.urls")),
    path("", include("apps.hits.urls")),
    path("admin/", admin.site.urls),
    path("account/", include("apps.twofactor.urls")),
    path("api/v1/", include("apps.twofactor.api_urls")),
    # drf-spectacular's views, loaded with its generator when first asked (apps/core/openapi.py).
    path(
        "api/schema/",
        served_on_first_request("drf_spectacular.views.SpectacularAPIView"),
        name="schema",
    ),
    # Its script comes from /api/docs/?script, not inline: the pages' CSP allows no inline script.
    path(
        "api/docs/",
        served_on_first_request(
            "drf_spectacular.views.SpectacularSwaggerSplitView", url_name="schema"
        ),
        name="api-docs",
    ),
]

handler400 = "apps.core.views.bad_request"
handler403 = "apps.core.views.permission_denied"
handler404 = "apps.core.views.page_not_found"
handler500 = "apps.core.views.server_error_page"
