"""The project's only way to unpickle anything: a restricted unpickler.

Pickles taskwatch reads come from other people's processes (APScheduler job
stores, Celery result backends) and are untrusted: ``pickle.loads`` on them
imports whatever modules they name and calls whatever they say. ``loads``
here decodes them without running anything but a short, reviewed list.

How it is restricted
--------------------
* ``find_class`` resolves an exact ``(module, name)`` pair from the caller's
  allow-list (no module prefixes, no dotted names) and checks that what it
  gets is a class (or, for ``pytz._p``/``pytz._UTC``, a function) defined in
  that module, not something the module merely imported. Every other global
  becomes an inert placeholder class (:class:`Opaque`) *without importing its
  module*; calling or building a placeholder records the arguments and state.
* The opcodes that run code are re-implemented on top of the pure-Python
  reference unpickler (``pickle._Unpickler``; the C unpickler cannot be
  hooked below ``find_class``). REDUCE/NEWOBJ/INST/OBJ call only allowed
  "constructor" classes (datetime types), taskwatch's own guard functions or
  placeholders. APScheduler classes are never called: they are only created
  empty (``cls.__new__(cls)``, or ``copyreg._reconstructor(cls, object,
  None)`` for protocols 0-1) and then given their state exactly once.
* BUILD never calls ``inst.__setstate__`` blindly: each allowed class has a
  reviewed way to take its state. The plain classes (cron fields and
  expressions) get their ``__dict__`` updated with public, non-shadowing
  names; Interval/Date/Cron/CalendarInterval triggers use their own
  ``__setstate__`` (read in APScheduler 3.11: they only assign attributes and
  may build a ``ZoneInfo`` from a string); the combining triggers' own
  ``__setstate__`` is *never* used, because it imports any ``module:name``
  its state names (``apscheduler.util.ref_to_obj``). Their state is applied
  here, with sub-trigger references looked up in the allowed trigger classes.
* BUILD on anything else (a class, a function, a datetime, a second BUILD of
  the same object) is refused, and so is setting ``__class__`` or any other
  underscore name: a pickle cannot patch classes in this process.
* APPEND(S)/SETITEM(S)/ADDITEMS work only on plain lists, dicts, sets and
  placeholders, never by calling methods of other objects.
* Size and cost are bounded: inputs over ``max_size`` bytes are refused; a
  work budget proportional to the input bounds what calls and state may
  cost (memo references let a small pickle pass one big object many times);
  dict keys and set members may not hold ints wider than 64 bits (crafted
  int hash collisions would make inserts quadratic).

Errors
------
A global that is not allowed is *not* an error: it decodes as a placeholder,
so a job whose arguments hold a user's object still shows. Anything hostile
or broken (a refused call, a getattr walk, a hostile state, a truncated
stream, the size or work limits) raises :class:`pickle.UnpicklingError` —
:class:`Refused`, its subclass, when the pickle asked for something this
module will not do. No other exception escapes ``loads``.

The allow-lists
---------------
``PRIMITIVES`` holds what pickles of dict/list/str/int/float/bool/None/
bytes/tuple/set/frozenset need across protocols 0-5, and nothing else:

* ``builtins.set``, ``builtins.frozenset``: protocols 0-3 pickle sets as
  ``set([...])``/``frozenset([...])`` (4+ have opcodes). Guarded: the
  argument must be a list or tuple (what the pickler writes) of hashable,
  collision-safe members.
* ``_codecs.encode``: protocols 0-2 pickle non-empty bytes as
  ``_codecs.encode(text, "latin1")``. Guarded: only a str and latin-1, so the
  codec registry (which imports ``encodings.*`` modules) is never consulted.
* ``builtins.bytes``: protocols 0-2 pickle ``b""`` as ``bytes()``. Guarded:
  no arguments only (``bytes(10**10)`` would allocate 10 GB).

Not needed, so not allowed: ``copyreg._reconstructor`` (only instances of
classes use it), ``builtins.getattr``, ``builtins.object``, ``bytearray``.

``DATETIME`` adds ``datetime.{datetime, date, time, timedelta, timezone}``:
their ``__reduce__`` calls the class with plain values.

``APSCHEDULER_JOB`` adds what APScheduler 3.11 job states hold (see
``apscheduler/job.py`` ``Job.__getstate__``): ``zoneinfo.ZoneInfo`` (only
as a value: it pickles as ``getattr(ZoneInfo, "_unpickle")(key, from_cache)``
at every protocol), ``builtins.getattr`` resolved to a guard that answers
*only* ``(ZoneInfo, "_unpickle")``, ``pytz._p``/``pytz._UTC`` (older stores;
placeholders when pytz is not installed), the trigger classes, the cron
field and expression classes, and for protocols 0-1 ``copyreg._reconstructor``
(guarded: only ``(allowed class, object, None)``) with ``builtins.object``
(usable only as that base).
"""

from __future__ import annotations

import _compat_pickle
import importlib
import io
import pickle
import re
import types
from collections.abc import Callable
from enum import Enum
from typing import Any, NoReturn

from taskwatch.reprs import Opaque, _OpaqueMeta

__all__ = [
    "APSCHEDULER_JOB",
    "DATETIME",
    "MAX_SIZE",
    "PRIMITIVES",
    "Opaque",
    "Refused",
    "loads",
]

#: Largest input ``loads`` accepts by default (bytes).
MAX_SIZE = 1 << 20

Pair = tuple[str, str]


class Refused(pickle.UnpicklingError):
    """The pickle asked for something the restricted unpickler will not do."""


# -- placeholders -------------------------------------------------------------


def _placeholder(module: str, name: str) -> type[Opaque]:
    return _OpaqueMeta("Opaque", (Opaque,), {"module": module, "name": name, "__slots__": ()})


# -- guards -------------------------------------------------------------------


class _Guard:
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


# -- policies -----------------------------------------------------------------


class _Kind(Enum):
    CALL = "call"  # may be called (REDUCE/NEWOBJ) with plain arguments
    STATE = "state"  # created empty, then given its state once (BUILD)
    VALUE = "value"  # may only be referenced
    BASE = "base"  # builtins.object: only as copyreg._reconstructor's base
    GUARD = "guard"  # replaced by a taskwatch guard; nothing is imported


_POLICIES: dict[Pair, _Kind] = {}


def _policy(kind: _Kind, module: str, *names: str) -> frozenset[Pair]:
    pairs = frozenset((module, name) for name in names)
    for pair in pairs:
        _POLICIES[pair] = kind
    return pairs


PRIMITIVES: frozenset[Pair] = _policy(
    _Kind.GUARD, "builtins", "set", "frozenset", "bytes"
) | _policy(_Kind.GUARD, "_codecs", "encode")

DATETIME: frozenset[Pair] = PRIMITIVES | _policy(
    _Kind.CALL, "datetime", "datetime", "date", "time", "timedelta", "timezone"
)

_TRIGGERS = (
    _policy(_Kind.STATE, "apscheduler.triggers.interval", "IntervalTrigger")
    | _policy(_Kind.STATE, "apscheduler.triggers.date", "DateTrigger")
    | _policy(_Kind.STATE, "apscheduler.triggers.cron", "CronTrigger")
    | _policy(_Kind.STATE, "apscheduler.triggers.calendarinterval", "CalendarIntervalTrigger")
    | _policy(_Kind.STATE, "apscheduler.triggers.combining", "AndTrigger", "OrTrigger")
)

APSCHEDULER_JOB: frozenset[Pair] = (
    DATETIME
    | _policy(_Kind.VALUE, "zoneinfo", "ZoneInfo")
    | _policy(_Kind.GUARD, "builtins", "getattr")
    | _policy(_Kind.CALL, "pytz", "_p", "_UTC")
    | _TRIGGERS
    # apscheduler/triggers/cron/fields.py (3.11): every field class.
    | _policy(
        _Kind.STATE,
        "apscheduler.triggers.cron.fields",
        "BaseField",
        "WeekField",
        "DayOfMonthField",
        "DayOfWeekField",
        "MonthField",
    )
    # apscheduler/triggers/cron/expressions.py (3.11): every expression class.
    | _policy(
        _Kind.STATE,
        "apscheduler.triggers.cron.expressions",
        "AllExpression",
        "RangeExpression",
        "MonthRangeExpression",
        "WeekdayRangeExpression",
        "WeekdayPositionExpression",
        "LastDayOfMonthExpression",
    )
    | _policy(_Kind.GUARD, "copyreg", "_reconstructor")
    | _policy(_Kind.BASE, "builtins", "object")
)

# Triggers whose own __setstate__ was read (APScheduler 3.11) and only assigns
# attributes: used as is. The combining triggers are handled here instead.
_OWN_SETSTATE = frozenset(
    {
        ("apscheduler.triggers.interval", "IntervalTrigger"),
        ("apscheduler.triggers.date", "DateTrigger"),
        ("apscheduler.triggers.cron", "CronTrigger"),
        ("apscheduler.triggers.calendarinterval", "CalendarIntervalTrigger"),
    }
)
_COMBINING = frozenset(
    {
        ("apscheduler.triggers.combining", "AndTrigger"),
        ("apscheduler.triggers.combining", "OrTrigger"),
    }
)

_MISSING = object()
_resolved: dict[Pair, Any] = {}


def _resolve_defined(module: str, name: str) -> Any:
    """Import ``module`` and return ``module.name`` if it is a class or
    function *defined there* (not re-exported); ``_MISSING`` otherwise."""
    pair = (module, name)
    if pair in _resolved:
        return _resolved[pair]
    try:
        mod = importlib.import_module(module)
    except ImportError:
        found: Any = _MISSING
    else:
        obj = getattr(mod, name, _MISSING)
        defined_here = (
            isinstance(obj, type | types.FunctionType)
            and (
                getattr(obj, "__module__", None),
                getattr(obj, "__qualname__", None),
            )
            == pair
        )
        found = obj if defined_here else _MISSING
    _resolved[pair] = found
    return found


# -- limits -------------------------------------------------------------------

_MAX_KEY_DEPTH = 32
_MAX_TRIGGER_DEPTH = 16
_MAX_ZONE_KEY = 128
# IANA names: "Europe/Berlin", "Etc/GMT+5", "America/Port-au-Prince", "UTC".
_ZONE_KEY = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-.]+){0,3}")
_WIDE_KEY = "ints wider than 64 bits are not allowed as dict keys or set members"


def _cost(value: Any) -> int:
    """What handing ``value`` to a call or a state costs, shallowly."""
    if isinstance(value, str | bytes | bytearray | tuple | list | dict | set | frozenset):
        return 1 + len(value)
    if isinstance(value, int):
        return 1 + value.bit_length() // 64
    return 1


# -- the unpickler ------------------------------------------------------------

_Base: Any = pickle._Unpickler  # the pure-Python reference unpickler
_dispatch: dict[int, Callable[[Any], None]] = dict(_Base.dispatch)


def _op(
    opcode: bytes,
) -> Callable[[Callable[[_SafeUnpickler], None]], Callable[[_SafeUnpickler], None]]:
    def register(fn: Callable[[_SafeUnpickler], None]) -> Callable[[_SafeUnpickler], None]:
        _dispatch[opcode[0]] = fn
        return fn

    return register


class _SafeUnpickler(_Base):  # type: ignore[misc]
    dispatch = _dispatch

    def __init__(self, data: bytes, allow: frozenset[Pair]) -> None:
        super().__init__(io.BytesIO(data))
        self._allow = allow
        self._budget = 4 * len(data) + 65536
        self._placeholders: dict[Pair, type[Opaque]] = {}
        self._guards: dict[Pair, _Guard] = {}
        # id -> (object, kind, pair) for everything find_class resolved
        self._kinds: dict[int, tuple[Any, _Kind, Pair]] = {}
        # objects created empty and waiting for their one BUILD: id -> object
        self._fresh: dict[int, Any] = {}
        self._key_costs: dict[int, tuple[Any, int]] = {}
        self._zoneinfo: Any = _MISSING

    # -- globals -------------------------------------------------------------
    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3 and self.fix_imports:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        pair = (module, name)
        if pair in self._allow:
            kind = _POLICIES[pair]
            if kind is _Kind.GUARD:
                return self._guard(pair)
            obj = _resolve_defined(module, name)
            if obj is not _MISSING:
                self._kinds[id(obj)] = (obj, kind, pair)
                return obj
        placeholder = self._placeholders.get(pair)
        if placeholder is None:
            placeholder = self._placeholders[pair] = _placeholder(module, name)
        return placeholder

    def _guard(self, pair: Pair) -> _Guard:
        guard = self._guards.get(pair)
        if guard is None:
            fn = {
                ("builtins", "set"): self._g_set,
                ("builtins", "frozenset"): self._g_frozenset,
                ("builtins", "bytes"): _g_bytes,
                ("_codecs", "encode"): _g_encode,
                ("builtins", "getattr"): self._g_getattr,
                ("copyreg", "_reconstructor"): self._g_reconstructor,
            }[pair]
            guard = self._guards[pair] = _Guard(".".join(pair), fn)
        return guard

    def close(self) -> None:
        for guard in self._guards.values():
            guard.close()
        self._fresh.clear()
        self._key_costs.clear()

    # -- guards --------------------------------------------------------------
    def _g_set(self, items: Any = ()) -> set[Any]:
        return set(self._checked_members(items))

    def _g_frozenset(self, items: Any = ()) -> frozenset[Any]:
        return frozenset(self._checked_members(items))

    def _checked_members(self, items: Any) -> list[Any] | tuple[Any, ...]:
        if type(items) not in (list, tuple):
            raise Refused(f"set() of a {type(items).__name__}")
        self._check_keys(items)
        return items

    def _g_getattr(self, obj: Any, name: Any, *default: Any) -> Any:
        zoneinfo = self._zoneinfo_class()
        if zoneinfo is not None and obj is zoneinfo and name == "_unpickle" and not default:
            return self._guard_zoneinfo_unpickle()
        raise Refused(f"getattr({_describe(obj)}, {_short(name)}) is not allowed")

    def _zoneinfo_class(self) -> Any:
        """``zoneinfo.ZoneInfo`` if this load allows it, else None."""
        if self._zoneinfo is _MISSING:
            pair = ("zoneinfo", "ZoneInfo")
            found = _resolve_defined(*pair) if pair in self._allow else _MISSING
            self._zoneinfo = None if found is _MISSING else found
        return self._zoneinfo

    def _guard_zoneinfo_unpickle(self) -> _Guard:
        pair = ("zoneinfo", "ZoneInfo._unpickle")
        guard = self._guards.get(pair)
        if guard is None:
            zoneinfo = self._zoneinfo_class()

            def unpickle(key: Any, from_cache: Any = True) -> Any:
                if (
                    type(key) is not str
                    or len(key) > _MAX_ZONE_KEY
                    or not _ZONE_KEY.fullmatch(key)
                    or ".." in key
                ):
                    raise Refused(f"ZoneInfo key {_short(key)}")
                if type(from_cache) not in (bool, int):
                    raise Refused("ZoneInfo from_cache must be a bool")
                self._charge(len(key) + 64)
                return zoneinfo._unpickle(key, from_cache)

            guard = self._guards[pair] = _Guard("zoneinfo.ZoneInfo._unpickle", unpickle)
        return guard

    def _g_reconstructor(self, cls: Any, base: Any, state: Any) -> Any:
        if base is not object or state is not None:
            raise Refused("copyreg._reconstructor is only allowed with object and no state")
        kind = self._kind(cls)
        if kind is not _Kind.STATE:
            raise Refused(f"copyreg._reconstructor of {_describe(cls)}")
        return self._new_empty(cls)

    # -- creating objects ----------------------------------------------------
    def _kind(self, obj: Any) -> _Kind | None:
        entry = self._kinds.get(id(obj))
        return entry[1] if entry is not None and entry[0] is obj else None

    def _new_empty(self, cls: Any) -> Any:
        obj = cls.__new__(cls)
        self._fresh[id(obj)] = obj
        return obj

    def _call(self, func: Any, args: Any, kwargs: Any) -> Any:
        if type(args) is not tuple or type(kwargs) is not dict:
            raise Refused("call arguments must be a tuple and a dict")
        self._charge(1 + sum(_cost(a) for a in args) + sum(_cost(v) for v in kwargs.values()))
        if isinstance(func, _OpaqueMeta):
            return func(args, kwargs)
        if isinstance(func, _Guard):
            return func(*args, **kwargs)
        if self._kind(func) is _Kind.CALL:
            if self._kinds[id(func)][2][0] == "pytz":
                _check_pytz_args(args, kwargs)
            return func(*args, **kwargs)
        raise Refused(f"calling {_describe(func)} is not allowed")

    def _newobj(self, cls: Any, args: Any, kwargs: Any) -> Any:
        if isinstance(cls, _OpaqueMeta):
            return self._call(cls, args, kwargs)
        kind = self._kind(cls)
        if kind is _Kind.CALL and isinstance(cls, type):
            if type(args) is not tuple or type(kwargs) is not dict:
                raise Refused("NEWOBJ arguments must be a tuple and a dict")
            self._charge(1 + sum(_cost(a) for a in args) + sum(_cost(v) for v in kwargs.values()))
            return cls.__new__(cls, *args, **kwargs)
        if kind is _Kind.STATE and args == () and kwargs == {}:
            return self._new_empty(cls)
        raise Refused(f"creating {_describe(cls)} with {_short(args)} is not allowed")

    # -- state ---------------------------------------------------------------
    def _build(self, inst: Any, state: Any) -> None:
        self._charge(
            _cost(state) + (sum(_cost(v) for v in state.values()) if type(state) is dict else 0)
        )
        if isinstance(inst, Opaque):
            inst.state = state
            return
        if self._fresh.pop(id(inst), None) is not inst:
            raise Refused(f"setting the state of {_describe(inst)} is not allowed")
        self._apply_state(inst, state, 0)

    def _apply_state(self, inst: Any, state: Any, depth: int) -> None:
        cls = type(inst)
        pair = (cls.__module__, cls.__qualname__)
        if pair in _OWN_SETSTATE:
            setstate = cls.__dict__.get("__setstate__")
            if setstate is None:
                raise Refused(f"{pair[0]}.{pair[1]} has no __setstate__ of its own any more")
            setstate(inst, state)
        elif pair in _COMBINING:
            self._combining_state(inst, state, depth)
        else:
            _plain_state(inst, state)

    def _combining_state(self, inst: Any, state: Any, depth: int) -> None:
        """AndTrigger/OrTrigger state, without ``ref_to_obj`` (which imports anything)."""
        if depth >= _MAX_TRIGGER_DEPTH:
            raise Refused("combining triggers nested too deep")
        if type(state) is not dict or type(state.get("triggers")) is not list:
            raise Refused("combining trigger state must be a dict with a list of triggers")
        version = state.get("version", 1)
        if type(version) is not int or version > 1:
            raise Refused(f"combining trigger state version {_short(version)}")
        refs = self._trigger_refs()
        triggers = []
        for entry in state["triggers"]:
            if type(entry) not in (tuple, list) or len(entry) != 2 or type(entry[0]) is not str:
                raise Refused("combining trigger entries must be (reference, state)")
            ref, substate = entry
            cls = refs.get(ref)
            if cls is None:
                raise Refused(f"trigger reference {_short(ref)} is not an allowed trigger class")
            self._charge(1 + _cost(substate))
            trigger = cls.__new__(cls)
            self._apply_state(trigger, substate, depth + 1)
            triggers.append(trigger)
        inst.jitter = state.get("jitter")
        inst.triggers = triggers

    def _trigger_refs(self) -> dict[str, Any]:
        refs: dict[str, Any] = {}
        for module, name in _TRIGGERS & self._allow:
            cls = _resolve_defined(module, name)
            if cls is not _MISSING:
                refs[f"{module}:{name}"] = cls
        return refs

    # -- keys ----------------------------------------------------------------
    def _check_keys(self, keys: list[Any] | tuple[Any, ...]) -> None:
        """Refuse dict keys/set members whose hashes an attacker can make collide.

        Ints hash to themselves modulo 2**61 - 1, so wide ints can all land in
        one bucket; tuples and frozensets hash from their members (and tuple
        hashes are not cached), so they are checked and charged member by member.
        """
        self._charge(len(keys))
        cost = 0
        for key in keys:
            kind = type(key)
            if kind is int:
                if key.bit_length() > 64:
                    raise Refused(_WIDE_KEY)
            elif kind is tuple or kind is frozenset:
                cost += self._key_cost(key, 0)
        self._charge(cost)

    def _key_cost(self, key: Any, depth: int) -> int:
        if type(key) is int:
            if key.bit_length() > 64:
                raise Refused(_WIDE_KEY)
            return 1
        if type(key) is tuple or type(key) is frozenset:
            cached = self._key_costs.get(id(key))
            if cached is not None and cached[0] is key:
                return cached[1]
            if depth >= _MAX_KEY_DEPTH:
                raise Refused("dict key nested too deep")
            total = 1
            for item in key:
                total += self._key_cost(item, depth + 1)
                if total > self._budget:
                    raise Refused("pickle too expensive to decode")
            self._key_costs[id(key)] = (key, total)
            return total
        return 1

    def _charge(self, amount: int) -> None:
        self._budget -= amount
        if self._budget < 0:
            raise Refused("pickle too expensive to decode")

    # -- containers ----------------------------------------------------------
    def _extend(self, target: Any, items: list[Any]) -> None:
        if type(target) is list:
            target.extend(items)
        elif isinstance(target, Opaque):
            target.items.extend(items)
        else:
            raise Refused(f"appending to {_describe(target)} is not allowed")

    def _set_items(self, target: Any, items: list[Any]) -> None:
        if len(items) % 2:
            raise pickle.UnpicklingError("odd number of items for SETITEMS")
        if type(target) is dict:
            mapping = target
        elif isinstance(target, Opaque):
            mapping = target.mapping
        else:
            raise Refused(f"setting items of {_describe(target)} is not allowed")
        keys = items[0::2]
        self._check_keys(keys)
        mapping.update(zip(keys, items[1::2], strict=True))

    def _add_items(self, target: Any, items: list[Any]) -> None:
        if type(target) is set:
            self._check_keys(items)
            target.update(items)
        elif isinstance(target, Opaque):
            target.items.extend(items)
        else:
            raise Refused(f"adding to {_describe(target)} is not allowed")


# Opcode handlers replacing the reference unpickler's for every opcode that
# calls, builds or mutates objects.


@_op(pickle.REDUCE)
def _load_reduce(self: _SafeUnpickler) -> None:
    args = self.stack.pop()
    self.stack[-1] = self._call(self.stack[-1], args, {})


@_op(pickle.NEWOBJ)
def _load_newobj(self: _SafeUnpickler) -> None:
    args = self.stack.pop()
    cls = self.stack.pop()
    self.append(self._newobj(cls, args, {}))


@_op(pickle.NEWOBJ_EX)
def _load_newobj_ex(self: _SafeUnpickler) -> None:
    kwargs = self.stack.pop()
    args = self.stack.pop()
    cls = self.stack.pop()
    self.append(self._newobj(cls, args, kwargs))


def _instantiate(self: _SafeUnpickler, klass: Any, args: list[Any]) -> None:
    if isinstance(klass, _OpaqueMeta) or args:
        self.append(self._call(klass, tuple(args), {}))
    else:
        self.append(self._newobj(klass, (), {}))


@_op(pickle.INST)
def _load_inst(self: _SafeUnpickler) -> None:
    module = self.readline()[:-1].decode("ascii")
    name = self.readline()[:-1].decode("ascii")
    klass = self.find_class(module, name)
    _instantiate(self, klass, self.pop_mark())


@_op(pickle.OBJ)
def _load_obj(self: _SafeUnpickler) -> None:
    args = self.pop_mark()
    if not args:
        raise pickle.UnpicklingError("OBJ without a class")
    klass = args.pop(0)
    _instantiate(self, klass, args)


@_op(pickle.BUILD)
def _load_build(self: _SafeUnpickler) -> None:
    state = self.stack.pop()
    self._build(self.stack[-1], state)


@_op(pickle.APPEND)
def _load_append(self: _SafeUnpickler) -> None:
    value = self.stack.pop()
    self._extend(self.stack[-1], [value])


@_op(pickle.APPENDS)
def _load_appends(self: _SafeUnpickler) -> None:
    items = self.pop_mark()
    self._extend(self.stack[-1], items)


@_op(pickle.SETITEM)
def _load_setitem(self: _SafeUnpickler) -> None:
    value = self.stack.pop()
    key = self.stack.pop()
    self._set_items(self.stack[-1], [key, value])


@_op(pickle.SETITEMS)
def _load_setitems(self: _SafeUnpickler) -> None:
    items = self.pop_mark()
    self._set_items(self.stack[-1], items)


@_op(pickle.DICT)
def _load_dict(self: _SafeUnpickler) -> None:
    items = self.pop_mark()
    mapping: dict[Any, Any] = {}
    self._set_items(mapping, items)
    self.append(mapping)


@_op(pickle.ADDITEMS)
def _load_additems(self: _SafeUnpickler) -> None:
    items = self.pop_mark()
    self._add_items(self.stack[-1], items)


@_op(pickle.FROZENSET)
def _load_frozenset(self: _SafeUnpickler) -> None:
    items = self.pop_mark()
    self._check_keys(items)
    self.append(frozenset(items))


def _refuse_extension(self: _SafeUnpickler) -> None:
    # The extension registry is process-global and its cache would keep our
    # placeholders for every later unpickling; nobody uses it.
    raise Refused("pickle extension codes are not supported")


for _opcode in (pickle.EXT1, pickle.EXT2, pickle.EXT4):
    _dispatch[_opcode[0]] = _refuse_extension


# -- helpers ------------------------------------------------------------------


def _plain_state(inst: Any, state: Any) -> None:
    """State of a class without ``__setstate__`` (cron fields and expressions)."""
    cls = type(inst)
    if getattr(cls, "__setstate__", None) is not None:
        raise Refused(f"{cls.__module__}.{cls.__qualname__} gained a __setstate__; not trusted")
    if type(state) is not dict:
        raise Refused(f"state of {cls.__qualname__} must be a dict")
    for key in state:
        if type(key) is not str or key.startswith("_") or hasattr(cls, key):
            raise Refused(f"state of {cls.__qualname__} may not set {_short(key)}")
    inst.__dict__.update(state)


def _g_bytes(*args: Any) -> bytes:
    if args:
        raise Refused("bytes() is only allowed without arguments")
    return b""


def _g_encode(text: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
    if type(text) is not str or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise Refused("_codecs.encode is only allowed as encode(str, 'latin1')")
    return text.encode("latin-1")


def _check_pytz_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if kwargs or len(args) > 4:
        raise Refused("pytz._p takes at most 4 positional arguments")
    for arg in args:
        if not (
            arg is None
            or type(arg) is str
            and len(arg) <= _MAX_ZONE_KEY
            or type(arg) is int
            and arg.bit_length() <= 32
        ):
            raise Refused(f"pytz argument {_short(arg)}")


def _short(value: Any) -> str:
    if isinstance(value, str | bytes | int | float | bool | type(None)):
        text = repr(value)
    else:
        text = _describe(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _describe(obj: Any) -> str:
    """Name an object for an error message without calling its ``__repr__``."""
    if isinstance(obj, _OpaqueMeta | Opaque | _Guard):
        return repr(obj)
    if isinstance(obj, type):
        return f"class {obj.__module__}.{obj.__qualname__}"
    return f"a {type(obj).__module__}.{type(obj).__qualname__}"


def loads(
    data: bytes | bytearray | memoryview,
    *,
    allow: frozenset[Pair] = PRIMITIVES,
    max_size: int = MAX_SIZE,
) -> Any:
    """Decode one pickle without importing or running what it names.

    ``allow`` is one of :data:`PRIMITIVES`, :data:`DATETIME`,
    :data:`APSCHEDULER_JOB` or a subset of their union (a pair with no
    reviewed policy is a ``ValueError``). Refused globals decode as
    :class:`Opaque` placeholders; everything else that goes wrong raises
    :class:`pickle.UnpicklingError` (:class:`Refused` for refusals).
    """
    unknown = set(allow) - _POLICIES.keys()
    if unknown:
        raise ValueError(f"no unpickling policy for {sorted(unknown)}")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"loads() needs bytes, not {type(data).__name__}")
    raw = bytes(data)
    if len(raw) > max_size:
        raise Refused(f"pickle of {len(raw)} bytes is over the {max_size}-byte limit")
    unpickler = _SafeUnpickler(raw, frozenset(allow))
    try:
        return unpickler.load()
    except pickle.UnpicklingError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure of hostile input is an UnpicklingError
        message = str(exc)
        if len(message) > 200:
            message = message[:199] + "…"
        raise pickle.UnpicklingError(f"cannot unpickle: {type(exc).__name__}: {message}") from exc
    finally:
        unpickler.close()
