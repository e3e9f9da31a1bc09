"""The one way an action is called, whatever the transport.

HTTP (`apps.actions.http`: the Django view and the WSGI fast path) and gRPC
(`apps.rpc.actions_service`) only decode their request into an `ActionCall` and encode what comes
back: an `Outcome`, or a `Problem` raised on the way. Everything in between happens here, once,
in this order:

    authenticate → find → authorise → validate → run (in the action's transaction) → represent

so that a control added to a call (rate limits, idempotency, timeouts, metrics, traces) is added
here and holds for every transport.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connections, transaction
from rest_framework.exceptions import ValidationError

from apps.accounts.credentials import bearer_credential
from apps.core.json import non_finite_errors

from .clients import Caller, authenticate_key
from .db import Db
from .exceptions import (
    ActionConflict,
    ActionNotFound,
    InvalidApiKey,
    MissingApiKey,
    ModuleForbidden,
)
from .registry import Action, Module, registry


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


@dataclass
class Outcome:
    """A call's answer: its represented result, and headers (or metadata) to send with it."""

    result: Any
    headers: dict[str, str] = field(default_factory=dict)


def perform(call: ActionCall) -> Outcome:
    """Run one call to the end; raises the Problem that answers it when it fails."""
    action = _authorised_action(call)
    arguments = validate(action, call.decode())
    return Outcome(result=run(action, arguments))


def stream(call: ActionCall) -> Iterator[Any]:
    """Run one call and yield its result item by item, each as it is read.

    For results too large to hold: the action's transaction stays open while the items are
    taken, and closing the iterator early (a client that went away) rolls it back at once.
    Authentication, authorisation and validation happen before the first item is asked for,
    so their problems are raised by this call, not by the iteration.
    """
    action = _authorised_action(call)
    arguments = validate(action, call.decode())
    return _items_in_transaction(action, arguments)


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


def validate(action: Action, payload: Any) -> dict[str, Any]:
    """The action's serializer applied to the input (a JSON object); 400 with `errors`."""
    if not isinstance(payload, Mapping):
        raise ValidationError({"non_field_errors": ["The input must be a JSON object."]})
    errors = non_finite_errors(payload)
    if errors:
        raise ValidationError(errors)
    return action.validate(payload)


def run(action: Action, arguments: Mapping[str, Any]) -> Any:
    """Run the action (in its transaction when it has a database) and represent its result.

    A result that is an iterator (rows from a server-side cursor) is read to the end inside the
    transaction. An integrity error rolls the transaction back and is a 409.
    """
    try:
        if action.using is None:
            return action.represent(_whole(action.func(**arguments)))
        with transaction.atomic(using=action.using):
            db = Db(connections[action.using])
            return action.represent(_whole(action.func(db, **arguments)))
    except IntegrityError as exc:
        raise ActionConflict() from exc


def _authorised_action(call: ActionCall) -> Action:
    caller = authenticate(call.authorization)
    return find_action(caller=caller, module=call.module, action=call.action)


def _whole(result: Any) -> Any:
    return list(result) if isinstance(result, Iterator) else result


def _items_in_transaction(action: Action, arguments: Mapping[str, Any]) -> Iterator[Any]:
    try:
        if action.using is None:
            yield from action.represent_items(action.func(**arguments))
            return
        with transaction.atomic(using=action.using):
            db = Db(connections[action.using])
            yield from action.represent_items(action.func(db, **arguments))
    except IntegrityError as exc:
        raise ActionConflict() from exc
