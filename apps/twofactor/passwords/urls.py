"""The password pages, under /account/password/."""

from django.urls import path

from . import views

urlpatterns = [
    path("password/", views.change_password_view, name="password-change"),
    path("password/reset/", views.ResetPasswordView.as_view(), name="password-reset"),
    path("password/reset/sent/", views.ResetPasswordSentView.as_view(), name="password-reset-sent"),
    path("password/reset/done/", views.ResetPasswordDoneView.as_view(), name="password-reset-done"),
    path(
        "password/reset/<uidb64>/<token>/",
        views.ResetPasswordConfirmView.as_view(),
        name="password-reset-confirm",
    ),
]
