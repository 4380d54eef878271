"""The rules the restricted unpickler (:mod:`taskwatch.sources.safe_pickle`) obeys.

One reviewed rule per ``(module, name)`` pair, registered by tables
(:func:`policy`): :class:`Call`, :class:`State`, :class:`Value`,
:class:`Base`, :class:`Guard`. Policies (:mod:`taskwatch.sources.pickle_policies`)
are written with these names only; the unpickler reads the registry.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from taskwatch.reprs import Opaque, _OpaqueMeta

if TYPE_CHECKING:
    from taskwatch.sources.safe_pickle import RestrictedUnpickler

Pair = tuple[str, str]


class Refused(pickle.UnpicklingError):
    """The pickle asked for something the restricted unpickler will not do."""


# -- guards -------------------------------------------------------------------


class BoundGuard:
    """A function taskwatch puts where a pickle names a dangerous global.

    It is bound to one load; afterwards it refuses every call, so a guard
    left inside a decoded value is inert.
    """

    __slots__ = ("_fn", "label")

    def __init__(self, label: str, fn: Callable[..., Any]) -> None:
        self.label = label
        self._fn: Callable[..., Any] | None = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._fn is None:
            raise Refused(f"{self.label} guard used outside its unpickling")
        return self._fn(*args, **kwargs)

    def close(self) -> None:
        self._fn = None

    def __repr__(self) -> str:
        return f"<guarded {self.label}>"

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(f"{self!r} cannot be pickled")


# -- rules --------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """May be called (REDUCE/NEWOBJ) with plain arguments; ``check(args, kwargs)`` first."""

    check: Callable[[tuple[Any, ...], dict[str, Any]], None] | None = None


@dataclass(frozen=True)
class State:
    """Created empty, then given its state once (BUILD).

    ``apply(unpickler, inst, state, depth)`` takes the state; without it the
    instance's ``__dict__`` is updated with public names (:func:`_plain_state`).
    """

    apply: Callable[[RestrictedUnpickler, Any, Any, int], None] | None = None


@dataclass(frozen=True)
class Value:
    """May only be referenced."""


@dataclass(frozen=True)
class Base:
    """``builtins.object``: only as ``copyreg._reconstructor``'s base."""


@dataclass(frozen=True)
class Guard:
    """Replaced by ``make(unpickler)``, a function bound to one load; nothing is imported."""

    make: Callable[[RestrictedUnpickler], Callable[..., Any]]


Rule = Call | State | Value | Base | Guard

_RULES: dict[Pair, Rule] = {}


def policy(table: Mapping[Pair, Rule]) -> frozenset[Pair]:
    """Register a table of reviewed rules; returns its pairs, an allow-list for :func:`loads`.

    A pair has one rule for every allow-list it is in: registering another
    rule for a known pair is a ``ValueError``.
    """
    for pair, rule in table.items():
        known = _RULES.setdefault(pair, rule)
        if known != rule:
            raise ValueError(f"{pair[0]}.{pair[1]} already has another unpickling rule")
    return frozenset(table)


def each(rule: Rule, module: str, *names: str) -> dict[Pair, Rule]:
    """``{(module, name): rule}`` for every name: a row of a policy table."""
    return {(module, name): rule for name in names}


def own_setstate(unpickler: RestrictedUnpickler, inst: Any, state: Any, depth: int) -> None:
    """A :class:`State` rule: the class's own ``__setstate__``, one that was read
    and only assigns attributes. Refused if the class no longer defines one."""
    cls = type(inst)
    setstate = cls.__dict__.get("__setstate__")
    if setstate is None:
        raise Refused(f"{cls.__module__}.{cls.__qualname__} has no __setstate__ of its own any more")
    setstate(inst, state)


def rule_for(pair: Pair) -> Rule | None:
    """The registered rule of ``pair``, if any."""
    return _RULES.get(pair)


def has_rule(pair: Pair) -> bool:
    return pair in _RULES


def short(value: Any) -> str:
    if isinstance(value, str | bytes | int | float | bool | type(None)):
        text = repr(value)
    else:
        text = describe(value)
    return text if len(text) <= 80 else text[:79] + "…"


def describe(obj: Any) -> str:
    """Name an object for an error message without calling its ``__repr__``."""
    if isinstance(obj, _OpaqueMeta | Opaque | BoundGuard):
        return repr(obj)
    if isinstance(obj, type):
        return f"class {obj.__module__}.{obj.__qualname__}"
    return f"a {type(obj).__module__}.{type(obj).__qualname__}"
