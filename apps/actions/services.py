"""Calling an action: find it, check the caller may, validate the input, run it.

The HTTP view and the gRPC server both go through these functions, so an action behaves the
same whichever way it is called. Errors are exceptions from `apps.actions.exceptions` (or DRF's
ValidationError), mapped to HTTP statuses or gRPC codes by the caller.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django.db import IntegrityError, connections, transaction

from apps.accounts.api_keys import Caller, authenticate_key
from apps.accounts.credentials import bearer_credential

from .db import Db
from .exceptions import (
    ActionConflict,
    ActionNotFound,
    InvalidApiKey,
    MissingApiKey,
    ModuleForbidden,
)
from .registry import Action, Module, registry


def authenticate_bearer(authorization: str | None) -> Caller:
    """The API client named by an `Authorization: Bearer <key>` value (HTTP header or gRPC
    metadata); 401 when there is none, or the key is unknown or revoked."""
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


def validate_input(action: Action, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The action's serializer applied to the input; raises ValidationError (400)."""
    serializer = action.input(data=payload)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def run_action(action: Action, arguments: Mapping[str, Any]) -> Any:
    """Run the action (in its transaction when it has a database) and return its result.

    A result that is an iterator (rows from a server-side cursor) is read to the end inside
    the transaction. An integrity error rolls the transaction back and becomes a 409.
    """
    try:
        if action.using is None:
            return _output(action, action.func(**arguments))
        with transaction.atomic(using=action.using):
            return _output(action, action.func(Db(connections[action.using]), **arguments))
    except IntegrityError as exc:
        raise ActionConflict() from exc


def stream_action(action: Action, arguments: Mapping[str, Any]) -> Iterator[Any]:
    """Yield the action's result item by item, inside its transaction while it lasts.

    For actions that return many rows: an iterator is never held in memory whole. A result
    that is not a list or an iterator is yielded as the one item.
    """
    try:
        if action.using is None:
            yield from _items(action, action.func(**arguments))
            return
        with transaction.atomic(using=action.using):
            db = Db(connections[action.using])
            yield from _items(action, action.func(db, **arguments))
    except IntegrityError as exc:
        raise ActionConflict() from exc


def call_action(*, caller: Caller, module: str, action: str, payload: Mapping[str, Any]) -> Any:
    """Everything a call does, in order: find, authorise, validate, run."""
    found = find_action(caller=caller, module=module, action=action)
    return run_action(found, validate_input(found, payload))


def _output(action: Action, result: Any) -> Any:
    if isinstance(result, Iterator):
        result = list(result)
    return action.represent(result)


def _items(action: Action, result: Any) -> Iterator[Any]:
    if not isinstance(result, Iterator | list | tuple):
        yield _output(action, result)
        return
    for item in result:
        yield action.represent_item(item)
