"""The table the example actions write to, owned and migrated by Django."""

from django.db import models
from django.db.models.functions import Now


class ExampleUser(models.Model):
    """A row per name; `bar` upserts it with plain SQL, so defaults live in the database."""

    name = models.CharField(max_length=100, unique=True)
    email = models.EmailField(max_length=254, null=True, blank=True)  # noqa: DJ001 (SQL NULL = no email)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "example_user"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
