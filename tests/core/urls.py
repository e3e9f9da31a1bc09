"""Throwaway views that raise each kind of error, to test the problem+json shape."""

import logging

from django.http import HttpResponse
from django.urls import path
from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from config.urls import *  # noqa: F403  (the real URLs and error handlers)
from config.urls import urlpatterns as project_urlpatterns

logger = logging.getLogger("tests.views")


class BearerRequired(BaseAuthentication):
    """Authenticates nobody, but says how one should: enough to make DRF answer 401."""

    def authenticate(self, request):
        return None

    def authenticate_header(self, request):
        return "Bearer"


class ItemSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=5)
    count = serializers.IntegerField(min_value=0)

    def validate(self, attrs):
        if attrs["name"] == "nope":
            raise serializers.ValidationError("That combination is not allowed.")
        return attrs


@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
def validate_item(request):
    serializer = ItemSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    return Response(serializer.validated_data)


@api_view(["GET"])
@authentication_classes([BearerRequired])
@permission_classes([IsAuthenticated])
def needs_login(request):
    return Response({"ok": True})


@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def forbidden(request):
    raise exceptions.PermissionDenied("Not for you.")


@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def missing(request):
    raise exceptions.NotFound("No such item.")


@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def broken(request):
    raise RuntimeError("secret internal detail")


def plain_broken(request):
    raise RuntimeError("secret internal detail")


def logs_something(request):
    logger.info("Hello from a view", extra={"answer": 42})
    return HttpResponse("logged")


urlpatterns = [
    *project_urlpatterns,
    path("t/validate", validate_item),
    path("t/login", needs_login),
    path("t/forbidden", forbidden),
    path("t/missing", missing),
    path("t/broken", broken),
    path("t/plain-broken", plain_broken),
    path("t/log", logs_something),
]
