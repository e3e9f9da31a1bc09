"""DRF's JSON renderer on the project's encoder, so /api/v1 answers encode values as actions do."""

from rest_framework import renderers

from .json import JSONEncoder


class JSONRenderer(renderers.JSONRenderer):
    encoder_class = JSONEncoder
