"""The registry of action modules, filled at start-up from each app's `actions.py`.

    actions = registry.module("example")

    @actions.action("bar", input=PersonSerializer, using="default")
    def bar(db: Db, name, email=None): ...

Declaring a module or an action twice is a mistake found at start-up (ImproperlyConfigured), not
on the first request that happens to hit it.
"""

from __future__ import annotations

import inspect
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.core.exceptions import ImproperlyConfigured

NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class Action:
    """One callable operation: its input serializer, its database and its function.

    With `using`, the function runs inside `transaction.atomic(using=using)` and receives a
    `Db` for that connection as its first argument; the validated input comes as keywords.
    """

    module: str
    name: str
    func: Callable[..., Any]
    input: type
    output: type | None = None
    many: bool = False  # the output is a list of `output`
    using: str | None = None
    timeout: float | None = None  # seconds its statements may run; None: the default

    def validate(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The input serializer's validated data for `payload`; raises ValidationError (400)."""
        return self._input_validator.validate(payload)

    def represent(self, result: Any) -> Any:
        """The result shaped by the output serializer (unchanged when there is none)."""
        if self.output is None:
            return result
        if self.many:
            return [self.represent_item(item) for item in result]
        return self.represent_item(result)

    def represent_item(self, item: Any) -> Any:
        """One object shaped by the output serializer.

        One serializer instance per action does every call's `to_representation`: building a
        DRF serializer deep-copies its fields, which costs more than shaping a few rows. Output
        serializers must therefore keep no per-call state on `self`.
        """
        if self.output is None:
            return item
        return self._output_serializer.to_representation(item)

    def represent_items(self, result: Any) -> Iterator[Any]:
        """The result item by item, each shaped; a result that is not a list or an iterator is
        the one item."""
        if not isinstance(result, Iterator | list | tuple):
            yield self.represent(result)
            return
        for item in result:
            yield self.represent_item(item)

    @cached_property
    def _output_serializer(self) -> Any:
        return self.output()

    @cached_property
    def _input_validator(self) -> _InputValidator:
        return _InputValidator(self.input)

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.func) or ""
        return doc.split("\n\n", 1)[0].replace("\n", " ")

    @property
    def description(self) -> str:
        doc = inspect.getdoc(self.func) or ""
        return doc.split("\n\n", 1)[1] if "\n\n" in doc else ""


class _InputValidator(threading.local):
    """One input serializer per action and thread, reused for every call.

    Building a DRF serializer deep-copies its declared fields, which costs more than validating
    a small input. DRF keeps a validation's state in `initial_data` and three cached attributes,
    reset here before each use; input serializers must keep no other per-call state on `self`.
    """

    def __init__(self, serializer_class: type):
        self.serializer = serializer_class()

    def validate(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        serializer = self.serializer
        for cached in ("_validated_data", "_errors", "_data"):
            serializer.__dict__.pop(cached, None)
        serializer.initial_data = payload
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


@dataclass
class Module:
    """A named group of actions, reached at `/actions/<name>/…`; one per Django app."""

    name: str
    origin: str
    actions: dict[str, Action] = field(default_factory=dict)

    def action(
        self,
        name: str,
        *,
        input: type,
        output: Any = None,
        using: str | None = None,
        timeout: float | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register the decorated function as the action `name` of this module.

        `input` is a serializer class. `output`, optional, is a serializer class for a result
        that is one object, or `Serializer(many=True)` for a list of them. `timeout` bounds how
        long its statements may run, in seconds (default ACTIONS_STATEMENT_TIMEOUT).
        """
        output, many = _output_class(output)
        _check_name("action", name)
        if using == "":
            raise ImproperlyConfigured(f"Action {self.name}.{name}: `using` is an empty alias.")
        if timeout is not None and not timeout > 0:
            raise ImproperlyConfigured(f"Action {self.name}.{name}: `timeout` must be > 0.")

        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            if name in self.actions:
                first = self.actions[name].func
                raise ImproperlyConfigured(
                    f"Action {self.name}.{name} is registered twice: by {_where(first)} "
                    f"and by {_where(func)}."
                )
            self.actions[name] = Action(
                module=self.name,
                name=name,
                func=func,
                input=input,
                output=output,
                many=many,
                using=using,
                timeout=timeout,
            )
            return func

        return register

    def get(self, name: str) -> Action | None:
        return self.actions.get(name)


class Registry:
    """Every action module, by name."""

    def __init__(self) -> None:
        self.modules: dict[str, Module] = {}

    def module(self, name: str) -> Module:
        """Declare a module; each name may be declared once, by one app."""
        _check_name("module", name)
        origin = _caller_module()
        if name in self.modules:
            raise ImproperlyConfigured(
                f"Action module {name!r} is declared twice: in {self.modules[name].origin} "
                f"and in {origin}."
            )
        module = self.modules[name] = Module(name=name, origin=origin)
        return module

    def get_module(self, name: str) -> Module | None:
        return self.modules.get(name)

    def actions(self) -> list[Action]:
        return [a for m in self.modules.values() for a in m.actions.values()]

    def check_databases(self, aliases: set[str]) -> None:
        """Every `using` names a configured database (called once the registry is filled)."""
        for action in self.actions():
            if action.using is not None and action.using not in aliases:
                raise ImproperlyConfigured(
                    f"Action {action.module}.{action.name} runs on database {action.using!r}, "
                    f"which is not configured (known: {', '.join(sorted(aliases))}). "
                    f"Set DATABASE_URL_{action.using.upper()}."
                )


def _check_name(kind: str, name: str) -> None:
    if not NAME.fullmatch(name):
        raise ImproperlyConfigured(
            f"Action {kind} name {name!r} must be lower case letters, digits and underscores, "
            "starting with a letter."
        )


def _output_class(output: Any) -> tuple[type | None, bool]:
    """`Serializer` -> (Serializer, False); `Serializer(many=True)` -> (Serializer, True)."""
    if output is None or isinstance(output, type):
        return output, False
    child = getattr(output, "child", None)
    if child is not None:
        return type(child), True
    raise ImproperlyConfigured(
        f"`output` must be a serializer class or Serializer(many=True), not {output!r}."
    )


def _where(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def _caller_module() -> str:
    frame = inspect.currentframe()
    caller = frame.f_back.f_back if frame and frame.f_back else None
    return caller.f_globals.get("__name__", "?") if caller else "?"


registry = Registry()
