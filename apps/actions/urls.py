from django.urls import path

from . import views

app_name = "actions"

urlpatterns = [
    path("actions/batch", views.batch, name="batch"),
    path("actions/<str:module>/", views.ping, name="ping"),
    path("actions/<str:module>/<str:action>", views.call, name="call"),
]
