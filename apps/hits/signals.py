"""Signals of the hit counter."""

from django.dispatch import Signal

# Sent by `flush_hits` between the steps of flushing one counter, with `step` ("taken": the
# pending hits are in a batch in Redis; "recorded": inside the database transaction, the batch id
# is written; "applied": the transaction committed), `name` and, after "taken", `batch_id`.
# For metrics, and for the tests, which stop a flush there to prove a crash loses nothing.
flush_step = Signal()
