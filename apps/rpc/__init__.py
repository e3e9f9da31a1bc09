"""The database actions over gRPC (dbapi.v1.Actions), the original demo service (api.Api), and a
client for them. `python manage.py grpcserver` serves; `python -m apps.rpc` calls by hand."""
