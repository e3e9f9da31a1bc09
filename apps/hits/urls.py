from django.urls import path

from . import views

app_name = "hits"

urlpatterns = [
    path("", views.root, name="root"),
]
