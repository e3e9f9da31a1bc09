"""The pipeline's observe step: every call counted, timed and traced once, whatever its
transport (`dbapi_action_calls_total`, `dbapi_action_duration_seconds`, an `action` span).

A batch is observed as one call of the pseudo-action `batch/batch`: it succeeds or fails whole,
so its calls have no outcome of their own. A stream is observed until its last item is read; a
client that goes away before is outcome `499` (as nginx logs it). Modules and actions that do
not exist are `unknown`, so a client cannot add label values by calling made-up names.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import Any

from apps.core import metrics, tracing
from apps.core.problems import status_for_exception

from .rates import RateLimited
from .registry import registry

BATCH = "batch"
GONE = "499"  # the client went away before the end of a stream


class Observation:
    """One call being observed, from its start to `finish`."""

    def __init__(self, *, module: str, action: str, transport: str):
        self.module, self.action = _known(module, action)
        self.transport = transport
        self.started = time.perf_counter()
        self.span = tracing.start_span(
            "action",
            **{"dbapi.module": self.module, "dbapi.action": self.action, "rpc.system": transport},
        )

    def finish(self, error: BaseException | None = None) -> None:
        if error is None:
            outcome = "ok"
        elif isinstance(error, GeneratorExit):
            outcome = GONE
        else:
            outcome = str(status_for_exception(error))
            if isinstance(error, RateLimited):
                metrics.record_rate_limited(self.module)
        metrics.record_action(
            module=self.module,
            action=self.action,
            transport=self.transport,
            outcome=outcome,
            seconds=time.perf_counter() - self.started,
        )
        if self.span is not None:
            failed = outcome.isdigit() and int(outcome) >= 500
            self.span.end(error=failed, **{"dbapi.outcome": outcome})


def observed(perform: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Observe each call of `perform` (an ActionCall, or a BatchCall as `batch`)."""

    @functools.wraps(perform)
    def observed_perform(call: Any) -> Any:
        observation = _observation(call)
        try:
            outcome = perform(call)
        except BaseException as exc:
            observation.finish(exc)
            raise
        observation.finish()
        return outcome

    return observed_perform


def observed_stream(
    stream: Callable[[Any], tuple[Iterator[Any], dict[str, str]]],
) -> Callable[[Any], tuple[Iterator[Any], dict[str, str]]]:
    """Observe each call of `stream` until its items are all read, or given up."""

    @functools.wraps(stream)
    def observed(call: Any) -> tuple[Iterator[Any], dict[str, str]]:
        observation = _observation(call)
        try:
            items, headers = stream(call)
        except BaseException as exc:
            observation.finish(exc)
            raise
        return _observed_items(items, observation), headers

    return observed


def _observed_items(items: Iterator[Any], observation: Observation) -> Iterator[Any]:
    try:
        yield from items
    except BaseException as exc:
        observation.finish(exc)
        raise
    observation.finish()


def _observation(call: Any) -> Observation:
    module, action = getattr(call, "module", BATCH), getattr(call, "action", BATCH)
    return Observation(module=module, action=action, transport=call.transport)


def _known(module: str, action: str) -> tuple[str, str]:
    """The labels for a call: its names when the action exists, else `unknown`."""
    if module == BATCH and action == BATCH:
        return module, action
    found = registry.get_module(module)
    if found is None:
        return metrics.UNKNOWN, metrics.UNKNOWN
    return module, (action if found.get(action) is not None else metrics.UNKNOWN)
