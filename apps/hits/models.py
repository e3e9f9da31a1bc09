"""What the database keeps of the hit counters: their persisted totals, and the flushed batches."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Counter names become Redis keys: keep them short and free of separators and spaces.
COUNTER_NAME_PATTERN = r"[a-z0-9][a-z0-9_.-]{0,99}"
validate_counter_name = RegexValidator(
    rf"\A{COUNTER_NAME_PATTERN}\Z",
    "A counter name is 1 to 100 of a-z 0-9 _ . - and starts with a letter or digit.",
)


class HitCounter(models.Model):
    """A named counter. `total` holds the hits persisted so far; hits counted in Redis and not
    flushed yet come on top of it."""

    name = models.CharField(
        max_length=100,
        unique=True,
        validators=[validate_counter_name],
    )
    total = models.PositiveBigIntegerField(default=0)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FlushedBatch(models.Model):
    """A batch of pending hits that a flush added to its counter.

    The id is written in the same transaction that adds the hits, so a flush that finds the batch
    again in Redis (after a crash, or while another flush works on it) knows it was counted.
    """

    id = models.UUIDField(primary_key=True)
    counter = models.ForeignKey(HitCounter, on_delete=models.CASCADE, related_name="batches")
    hits = models.PositiveBigIntegerField()
    flushed_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name_plural = _("flushed batches")
        ordering = ["-flushed_at"]

    def __str__(self) -> str:
        return f"{self.hits} hits into {self.counter_id} ({self.id})"
