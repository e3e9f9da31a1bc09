"""The one way an action is called, whatever the transport.

HTTP (`apps.actions.http`: the Django views and the WSGI fast path) and gRPC
(`apps.rpc.actions_service`) only decode their request into an `ActionCall` (or a `BatchCall`)
and encode what comes back: an `Outcome`, or a `Problem` raised on the way. Everything in between
happens here, once, in this order:

    authenticate → find → authorise → rate limit → validate → in the call's transactions:
    idempotency → run (under the statement timeout) → represent → keep the answer for the key

and a dry run rolls every transaction back at the end. A control added to calls is added here
and holds for every transport: each call is observed once (counted, timed and traced,
`observe.py`) around all of it.

A rate-limited client's call is counted once it names something the client may call; from there
on every answer to it carries the RateLimit headers, its problems included (`_answered_with`).
The answers before have no count to report: 401 (no client is known), 403 and 404 (nothing
callable was named, so nothing was counted), and a batch whose body is not a list of calls. A
module's ping (`ping`) is not counted: it runs nothing.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, OperationalError, connections, transaction
from django.utils import timezone
from psycopg2 import errors as pg_errors
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from apps.accounts.credentials import bearer_credential
from apps.core import database, tracing
from apps.core.json import dumps, non_finite_errors
from apps.core.problems import DocumentedProblem, Problem
from apps.core.serializers import StringField

from . import idempotency, rates, sql
from .clients import Caller, authenticate_key
from .db import Db
from .exceptions import (
    ActionConflict,
    ActionNotFound,
    BatchSpansDatabases,
    InvalidApiKey,
    MissingApiKey,
    ModuleForbidden,
    StatementTimeout,
)
from .observe import observed, observed_stream
from .registry import Action, Module, registry


@dataclass(frozen=True)
class CallOptions:
    """How the caller wants the call made, from headers or metadata."""

    idempotency_key: str | None = None  # as sent; the pipeline checks it (`_checked`)
    dry_run: bool = False  # run, answer, and roll everything back
    deadline: float | None = None  # time.monotonic() by which the caller stops waiting (gRPC)


@dataclass
class ActionCall:
    """One call, as a transport hands it over: who calls, what, and with which input."""

    authorization: str | None  # the `Authorization` header or metadata value, as sent
    module: str
    action: str
    # The input, decoded when the call gets that far: a body that cannot be read or decoded is
    # answered after authentication and authorisation, as a body that fails validation is.
    decode: Callable[[], Any] = dict
    transport: str = "http"  # "http" or "grpc": for logs and metrics, never for behaviour
    options: CallOptions = field(default_factory=CallOptions)


@dataclass
class BatchCall:
    """Several calls to run in order in one transaction: `{"calls": [{"module", "action",
    "input"}, …]}` as `decode` gives it."""

    authorization: str | None
    decode: Callable[[], Any] = dict
    transport: str = "http"
    options: CallOptions = field(default_factory=CallOptions)


@dataclass
class Outcome:
    """A call's answer: its represented result, and headers (or metadata) to send with it.

    `body` is the answer's JSON when it was encoded here: the answer kept for an
    Idempotency-Key, which a repeat of the call gets byte for byte.
    """

    result: Any
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


@observed
def perform(call: ActionCall) -> Outcome:
    """Run one call to the end; raises the Problem that answers it when it fails."""
    caller = authenticate(call.authorization)
    action = find_action(caller=caller, module=call.module, action=call.action)
    headers = count_call(caller)
    with _answered_with(headers):
        options = _checked(call.options)
        payload = call.decode()
        arguments = validate(action, payload)

        def run_it(work: Work) -> Any:
            return action.represent(_whole(work.run(action, arguments)))

        signature = {"module": action.module, "action": action.name, "input": payload}
        return _transact(
            caller, options, headers, databases=_databases([action]), run=run_it, what=signature
        )


@observed
def perform_batch(call: BatchCall) -> Outcome:
    """Run every call of a batch in order, all in one transaction per database: all succeed
    (their results in order), or nothing is committed and the failing call's problem is
    raised with its `index`.

    The steps are a single call's, in the same order: every call is found and authorised, then
    the batch is counted (one per call), then every input is validated."""
    caller = authenticate(call.authorization)
    items = _batch_items(call.decode())
    actions = []
    for index, item in enumerate(items):
        with _indexed(index):
            actions.append(find_action(caller=caller, module=item["module"], action=item["action"]))
    headers = count_call(caller, cost=len(items))
    with _answered_with(headers):
        options = _checked(call.options)
        steps = []
        for index, (action, item) in enumerate(zip(actions, items, strict=True)):
            with _indexed(index):
                steps.append((action, validate(action, item["input"])))
        databases = _databases(actions)
        if len(databases) > 1 and not settings.ACTIONS_BATCH_MULTI_DB:
            raise BatchSpansDatabases(
                f"This batch's calls run on several databases ({', '.join(databases)}); a batch "
                "is atomic on one database only."
            )

        def run_all(work: Work) -> dict[str, list[Any]]:
            results = []
            for index, (action, arguments) in enumerate(steps):
                with _indexed(index):
                    results.append(action.represent(_whole(work.run(action, arguments))))
            return {"results": results}

        signature = {"batch": items}
        return _transact(caller, options, headers, databases=databases, run=run_all, what=signature)


@observed_stream
def stream(call: ActionCall) -> tuple[Iterator[Any], dict[str, str]]:
    """Run one call and yield its result item by item, each as it is read; with the headers
    to answer with.

    For results too large to hold: the action's transaction stays open while the items are
    taken, and closing the iterator early (a client that went away) rolls it back at once.
    Authentication, authorisation, the rate limit and validation happen before the first item
    is asked for, so their problems are raised by this call, not by the iteration. A streamed
    answer is not kept for an Idempotency-Key (it would have to be held whole): a key is a 400.
    """
    caller = authenticate(call.authorization)
    action = find_action(caller=caller, module=call.module, action=call.action)
    headers = count_call(caller)
    with _answered_with(headers):
        options = _checked(call.options)
        if options.idempotency_key is not None:
            raise StreamNotKept()
        arguments = validate(action, call.decode())
    items = _items_in_transaction(action, arguments, options, rate_headers=dict(headers))
    if options.dry_run:
        headers["Preference-Applied"] = "tx=rollback"
    return items, headers


def ping(call: ActionCall) -> Outcome:
    """A module's ping: `true` when the module exists and the caller may call it."""
    find_module(caller=authenticate(call.authorization), module=call.module)
    return Outcome(result=True)


# --- The steps ------------------------------------------------------------------------------------


def authenticate(authorization: str | None) -> Caller:
    """The API client named by an `Authorization: Bearer <key>` value; 401 when there is none,
    or the key is unknown or revoked."""
    key = bearer_credential(authorization)
    if key is None:
        raise MissingApiKey()
    caller = authenticate_key(key)
    if caller is None:
        raise InvalidApiKey()
    tracing.annotate(**{"dbapi.client": caller.name})
    return caller


def find_module(*, caller: Caller, module: str) -> Module:
    found = registry.get_module(module)
    if found is None:
        raise ActionNotFound(f"There is no action module {module!r}.")
    if not caller.may_call(module):
        raise ModuleForbidden(f"This API key may not call the {module!r} module.")
    return found


def find_action(*, caller: Caller, module: str, action: str) -> Action:
    found = find_module(caller=caller, module=module).get(action)
    if found is None:
        raise ActionNotFound(f"The {module!r} module has no action {action!r}.")
    return found


def count_call(caller: Caller, *, cost: int = 1) -> dict[str, str]:
    """Count the calls against the client's rate (429 over it); the RateLimit headers."""
    if caller.rate is None:
        return {}
    return rates.take(client_id=caller.id, rate=caller.rate, cost=cost).headers()


def _answered_with(headers: Mapping[str, str]) -> contextlib.AbstractContextManager[None]:
    """A problem raised in the block is answered with `headers` too: the RateLimit headers of
    a counted call, which its client gets with every answer, the 400, 409 or 504 as well.
    Without a rate there are none, and the block is left as it is."""
    if not headers:
        return _AS_IT_IS
    return _answering_with(dict(headers))  # not what the block adds to the success's (a dry run's)


_AS_IT_IS = contextlib.nullcontext()


@contextlib.contextmanager
def _answering_with(rate_headers: dict[str, str]) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        raise DocumentedProblem.of(exc).adding(headers=rate_headers) from exc


def _checked(options: CallOptions) -> CallOptions:
    """The options with their Idempotency-Key checked (400 when it is not 1 to 255 printable
    ASCII): after the call was counted, so that the 400 carries the RateLimit headers."""
    if options.idempotency_key is None:
        return options
    return replace(options, idempotency_key=idempotency.parse_key(options.idempotency_key))


def validate(action: Action, payload: Any) -> dict[str, Any]:
    """The action's serializer applied to the input (a JSON object); 400 with `errors`."""
    if not isinstance(payload, Mapping):
        raise ValidationError({"non_field_errors": ["The input must be a JSON object."]})
    errors = non_finite_errors(payload)
    if errors:
        raise ValidationError(errors)
    return action.validate(payload)


class Work:
    """The transactions of one call or batch: one per database it touches, opened as the calls
    reach it and committed together at the end, or all rolled back (an error, a dry run).

    Each action's statements run under its timeout (`SET LOCAL statement_timeout` on
    PostgreSQL), shortened to the caller's deadline when that comes first. The `SET LOCAL` rides
    in front of the action's first statement, in the same round trip (`_bounded`), rather than
    costing every call one more; with tracing on it goes on its own, so that each SQL span keeps
    its statement's name.
    """

    def __init__(self, options: CallOptions):
        self.options = options
        self.stack = contextlib.ExitStack()
        self.opened: list[str] = []
        self.timeouts: dict[str, int] = {}
        self.unsent: dict[str, str] = {}  # per database: the bounds its next statement carries
        self.watched: set[str] = set()

    def __enter__(self) -> Work:
        return self

    def __exit__(self, kind, error, trace) -> bool:
        if error is None and self.options.dry_run:
            for alias in self.opened:
                transaction.set_rollback(True, using=alias)
        return self.stack.__exit__(kind, error, trace)

    def open(self, alias: str) -> None:
        if alias not in self.opened:
            self.stack.enter_context(transaction.atomic(using=alias))
            self.opened.append(alias)

    def run(self, action: Action, arguments: Mapping[str, Any]) -> Any:
        """Run the action in its database's transaction, under its timeout."""
        if action.using is None:
            return action.func(**arguments)
        self.open(action.using)
        self._limit(action.using, seconds=action.timeout or settings.ACTIONS_STATEMENT_TIMEOUT)
        return action.func(Db(connections[action.using]), **arguments)

    def _limit(self, alias: str, *, seconds: float) -> None:
        if self.options.deadline is not None:
            seconds = min(seconds, max(0.001, self.options.deadline - time.monotonic()))
        # Past DB_TIMEOUT, the statements are waited for while the server answers probes.
        self.stack.enter_context(database.statement_allowance(seconds))
        milliseconds = max(1, math.ceil(seconds * 1000))
        connection = connections[alias]
        if connection.vendor != "postgresql" or self.timeouts.get(alias) == milliseconds:
            return
        lock_milliseconds = max(1, math.ceil(settings.DB_TIMEOUT * 1000))
        bounds = sql.SQL_STATEMENT_TIMEOUT % (f"'{milliseconds}'", f"'{lock_milliseconds}'")
        self.timeouts[alias] = milliseconds
        if tracing.is_on():
            with connection.cursor() as cursor:
                cursor.execute(bounds)
            return
        self.unsent[alias] = bounds
        if alias not in self.watched:
            self.stack.enter_context(connection.execute_wrapper(partial(self._bounded, alias)))
            self.watched.add(alias)

    def _bounded(self, alias: str, execute, statement, params, many, context):
        """Django's execute wrapper: the first statement after `_limit` carries the bounds."""
        bounds = self.unsent.pop(alias, None)
        if bounds is None:
            return execute(statement, params, many, context)
        if many or context["cursor"].cursor.name is not None:
            # executemany, or a server-side cursor (its DECLARE takes one statement): apart.
            with context["connection"].cursor() as cursor:
                cursor.execute(bounds)
            return execute(statement, params, many, context)
        return execute(f"{bounds}; {statement}", params, many, context)


class StreamNotKept(Problem):
    status_code = 400
    default_detail = (
        "A streamed answer (Accept: application/x-ndjson) is not kept for an Idempotency-Key: "
        "send the key without asking for a stream, or stream without a key."
    )
    type_slug = "stream-not-kept"


# --- Inside the transactions ----------------------------------------------------------------------


def _transact(
    caller: Caller,
    options: CallOptions,
    headers: dict[str, str],
    *,
    databases: list[str],
    run: Callable[[Work], Any],
    what: Any,
) -> Outcome:
    """Run `run` in the call's transactions, with its Idempotency-Key (none on a dry run: it
    keeps nothing) and the answer headers the options call for."""
    key = None if options.dry_run else options.idempotency_key
    if options.dry_run:
        headers["Preference-Applied"] = "tx=rollback"
    with _mapped_database_errors(), Work(options) as work:
        if key is None:
            return Outcome(result=run(work), headers=headers)
        # The answer is kept on the call's (first) database, in the same transaction.
        using = databases[0] if databases else "default"
        work.open(using)
        digest = idempotency.fingerprint(what)
        now = timezone.now()
        kept = idempotency.claim(using=using, client_id=caller.id, key=key, digest=digest, now=now)
        if kept is not None:
            headers["Idempotent-Replayed"] = "true"
            return Outcome(result=None, headers=headers, body=kept.body)
        result = run(work)
        body = dumps(result)
        idempotency.keep(
            using=using,
            client_id=caller.id,
            key=key,
            digest=digest,
            status=200,
            body=body,
            now=now,
        )
        return Outcome(result=result, headers=headers, body=body)


def _items_in_transaction(
    action: Action,
    arguments: Mapping[str, Any],
    options: CallOptions,
    *,
    rate_headers: Mapping[str, str],
) -> Iterator[Any]:
    # A failure midway ends a gRPC stream with the RateLimit metadata too: its trailers are sent
    # with the status (an HTTP stream sent its headers with the first line).
    with _answered_with(rate_headers), _mapped_database_errors(), Work(options) as work:
        yield from action.represent_items(work.run(action, arguments))


class _mapped_database_errors:  # a context manager, lower case as contextlib's are
    """An integrity error is a 409 and a cancelled statement a 504, both rolled back. (A class
    rather than a generator, as it wraps every call.)"""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, trace) -> bool:
        if isinstance(error, IntegrityError):
            raise ActionConflict() from error
        if isinstance(error, OperationalError) and isinstance(
            error.__cause__, pg_errors.QueryCanceled
        ):
            raise StatementTimeout() from error
        return False


@contextlib.contextmanager
def _indexed(index: int) -> Iterator[None]:
    """A batch's call failing: its problem, with its place in the batch."""
    try:
        with _mapped_database_errors():
            yield
    except DocumentedProblem:
        raise
    except Exception as exc:
        raise DocumentedProblem.of(exc).adding(index=index) from exc


def _databases(actions: list[Action]) -> list[str]:
    """The databases the actions run on, in the order they are first reached."""
    return list(dict.fromkeys(a.using for a in actions if a.using is not None))


def _whole(result: Any) -> Any:
    return list(result) if isinstance(result, Iterator) else result


# --- The batch's own input ------------------------------------------------------------------------


class _BatchItem(serializers.Serializer):
    module = StringField()
    action = StringField()
    input = serializers.DictField(required=False, default=dict)


def _batch_items(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, Mapping):
        raise ValidationError({"non_field_errors": ["The input must be a JSON object."]})
    errors = non_finite_errors(payload)
    if errors:
        raise ValidationError(errors)
    limit = settings.ACTIONS_MAX_BATCH
    batch = serializers.ListField(child=_BatchItem(), min_length=1, max_length=limit)
    calls = payload.get("calls")
    if calls is None:
        raise ValidationError({"calls": ["This field is required."]})
    try:
        return batch.run_validation(calls)
    except ValidationError as exc:
        raise ValidationError({"calls": exc.detail}) from None
