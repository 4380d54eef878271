"""The project's only way to unpickle anything: a restricted unpickler.

Pickles taskwatch reads come from other people's processes (APScheduler job
stores, Celery result backends) and are untrusted: ``pickle.loads`` on them
imports whatever modules they name and calls whatever they say. ``loads``
here decodes them without running anything but a short, reviewed list.

How it is restricted
--------------------
* ``find_class`` resolves an exact ``(module, name)`` pair from the caller's
  allow-list (no module prefixes, no dotted names) and checks that what it
  gets is a class or function defined in that module, not something the
  module merely imported. Every other global
  becomes an inert placeholder class (:class:`Opaque`) *without importing its
  module*; calling or building a placeholder records the arguments and state.
* The opcodes that run code are re-implemented on top of the pure-Python
  reference unpickler (``pickle._Unpickler``; the C unpickler cannot be
  hooked below ``find_class``). REDUCE/NEWOBJ/INST/OBJ call only allowed
  :class:`Call` classes (datetime types), taskwatch's own guard functions or
  placeholders. :class:`State` classes are never called: they are only
  created empty (``cls.__new__(cls)``, or ``copyreg._reconstructor(cls,
  object, None)`` for protocols 0-1) and then given their state exactly once.
* BUILD never calls ``inst.__setstate__`` blindly: each allowed class has a
  reviewed way to take its state (its :class:`State` rule). Without one,
  its ``__dict__`` is updated with public, non-shadowing names, and only if
  the class has no ``__setstate__`` at all.
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

Rules and allow-lists
---------------------
What a pickle may name is decided by tables of rules, one reviewed rule per
``(module, name)`` pair (:func:`policy` registers a table and returns its
pairs, the allow-list ``loads`` takes): :class:`Call` (may be called with
plain arguments, after an optional check), :class:`State` (created empty,
given its state once, by the class's own reviewed ``__setstate__``
(:func:`own_setstate`), by a policy's function, or as plain attributes),
:class:`Value` (only referenced), :class:`Base` (``builtins.object`` as
``copyreg._reconstructor``'s base) and :class:`Guard` (replaced by a
function made per load; nothing is imported). This module knows no
application: the tables for Celery results and APScheduler jobs are in
:mod:`taskwatch.sources.pickle_policies`; a new kind of pickle is a new
table there, not an edit here.

The protocol's own tables live here:

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

``OLD_PROTOCOL_INSTANCES`` is what protocols 0-1 need to create instances
of :class:`State` classes: ``copyreg._reconstructor`` (guarded: only
``(State class, object, None)``) with ``builtins.object`` (usable only as
that base).
"""

from __future__ import annotations

import _compat_pickle
import importlib
import io
import pickle
import types
from collections.abc import Callable
from typing import Any

from taskwatch.reprs import Opaque, _OpaqueMeta
from taskwatch.sources.pickle_rules import (
    Base,
    BoundGuard,
    Call,
    Guard,
    Pair,
    Refused,
    Rule,
    State,
    Value,
    describe,
    each,
    has_rule,
    own_setstate,
    policy,
    rule_for,
    short,
)

__all__ = [
    "MAX_SIZE",
    "Pair",
    "OLD_PROTOCOL_INSTANCES",
    "PRIMITIVES",
    "Base",
    "Call",
    "Guard",
    "Opaque",
    "Refused",
    "RestrictedUnpickler",
    "Rule",
    "State",
    "cost",
    "Value",
    "describe",
    "each",
    "loads",
    "own_setstate",
    "policy",
    "short",
]

#: Largest input ``loads`` accepts by default (bytes).
MAX_SIZE = 1 << 20

# -- placeholders -------------------------------------------------------------


def _placeholder(module: str, name: str) -> type[Opaque]:
    return _OpaqueMeta("Opaque", (Opaque,), {"module": module, "name": name, "__slots__": ()})


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
_WIDE_KEY = "ints wider than 64 bits are not allowed as dict keys or set members"


def cost(value: Any) -> int:
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
) -> Callable[[Callable[[RestrictedUnpickler], None]], Callable[[RestrictedUnpickler], None]]:
    def register(fn: Callable[[RestrictedUnpickler], None]) -> Callable[[RestrictedUnpickler], None]:
        _dispatch[opcode[0]] = fn
        return fn

    return register


class RestrictedUnpickler(_Base):  # type: ignore[misc]
    """The reference unpickler with every opcode that calls, builds or mutates
    objects replaced. Policies' guards and :class:`State` functions use its
    public methods: :meth:`charge`, :meth:`check_keys`, :meth:`resolve`,
    :meth:`guard`, :meth:`apply_state`."""

    dispatch = _dispatch

    def __init__(self, data: bytes, allow: frozenset[Pair]) -> None:
        super().__init__(io.BytesIO(data))
        self._allow = allow
        self._budget = 4 * len(data) + 65536
        self._placeholders: dict[Pair, type[Opaque]] = {}
        self._guards: dict[Pair, BoundGuard] = {}
        self._more_guards: list[BoundGuard] = []
        # id -> (object, rule) for everything find_class resolved
        self._rules: dict[int, tuple[Any, Rule]] = {}
        # objects created empty and waiting for their one BUILD: id -> object
        self._fresh: dict[int, Any] = {}
        self._key_costs: dict[int, tuple[Any, int]] = {}

    # -- globals -------------------------------------------------------------
    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3 and self.fix_imports:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        pair = (module, name)
        if pair in self._allow:
            rule = rule_for(pair)
            if isinstance(rule, Guard):
                return self._guard(pair, rule)
            obj = _resolve_defined(module, name)
            if obj is not _MISSING:
                self._rules[id(obj)] = (obj, rule)
                return obj
        placeholder = self._placeholders.get(pair)
        if placeholder is None:
            placeholder = self._placeholders[pair] = _placeholder(module, name)
        return placeholder

    def _guard(self, pair: Pair, rule: Guard) -> BoundGuard:
        guard = self._guards.get(pair)
        if guard is None:
            guard = self._guards[pair] = BoundGuard(".".join(pair), rule.make(self))
        return guard

    def guard(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` wrapped as a guard of this load: refused once the load is over."""
        guard = BoundGuard(label, fn)
        self._more_guards.append(guard)
        return guard

    def resolve(self, pair: Pair) -> Any:
        """The class or function ``pair`` names if this load allows it (and it is
        defined where it says), else None."""
        if pair not in self._allow:
            return None
        found = _resolve_defined(*pair)
        return None if found is _MISSING else found

    def close(self) -> None:
        for guard in [*self._guards.values(), *self._more_guards]:
            guard.close()
        self._fresh.clear()
        self._key_costs.clear()

    # -- guards of the protocol's own globals ----------------------------------
    def _checked_members(self, items: Any) -> list[Any] | tuple[Any, ...]:
        if type(items) not in (list, tuple):
            raise Refused(f"set() of a {type(items).__name__}")
        self.check_keys(items)
        return items

    def _g_reconstructor(self, cls: Any, base: Any, state: Any) -> Any:
        if base is not object or state is not None:
            raise Refused("copyreg._reconstructor is only allowed with object and no state")
        if not isinstance(self._rule(cls), State):
            raise Refused(f"copyreg._reconstructor of {describe(cls)}")
        return self._new_empty(cls)

    # -- creating objects ----------------------------------------------------
    def _rule(self, obj: Any) -> Rule | None:
        entry = self._rules.get(id(obj))
        return entry[1] if entry is not None and entry[0] is obj else None

    def _new_empty(self, cls: Any) -> Any:
        obj = cls.__new__(cls)
        self._fresh[id(obj)] = obj
        return obj

    def _call(self, func: Any, args: Any, kwargs: Any) -> Any:
        if type(args) is not tuple or type(kwargs) is not dict:
            raise Refused("call arguments must be a tuple and a dict")
        self.charge(1 + sum(cost(a) for a in args) + sum(cost(v) for v in kwargs.values()))
        if isinstance(func, _OpaqueMeta):
            return func(args, kwargs)
        if isinstance(func, BoundGuard):
            return func(*args, **kwargs)
        rule = self._rule(func)
        if isinstance(rule, Call):
            if rule.check is not None:
                rule.check(args, kwargs)
            return func(*args, **kwargs)
        raise Refused(f"calling {describe(func)} is not allowed")

    def _newobj(self, cls: Any, args: Any, kwargs: Any) -> Any:
        if isinstance(cls, _OpaqueMeta):
            return self._call(cls, args, kwargs)
        rule = self._rule(cls)
        if isinstance(rule, Call) and isinstance(cls, type):
            if type(args) is not tuple or type(kwargs) is not dict:
                raise Refused("NEWOBJ arguments must be a tuple and a dict")
            self.charge(1 + sum(cost(a) for a in args) + sum(cost(v) for v in kwargs.values()))
            return cls.__new__(cls, *args, **kwargs)
        if isinstance(rule, State) and args == () and kwargs == {}:
            return self._new_empty(cls)
        raise Refused(f"creating {describe(cls)} with {short(args)} is not allowed")

    # -- state ---------------------------------------------------------------
    def _build(self, inst: Any, state: Any) -> None:
        self.charge(
            cost(state) + (sum(cost(v) for v in state.values()) if type(state) is dict else 0)
        )
        if isinstance(inst, Opaque):
            inst.state = state
            return
        if self._fresh.pop(id(inst), None) is not inst:
            raise Refused(f"setting the state of {describe(inst)} is not allowed")
        self.apply_state(inst, state, 0)

    def apply_state(self, inst: Any, state: Any, depth: int) -> None:
        """Give ``inst`` (created empty) ``state`` by its class's :class:`State` rule.

        ``depth``: how deep in nested states this is, for rules that recurse.
        """
        cls = type(inst)
        rule = rule_for((cls.__module__, cls.__qualname__))
        if not isinstance(rule, State):
            raise Refused(f"setting the state of {describe(inst)} is not allowed")
        if rule.apply is not None:
            rule.apply(self, inst, state, depth)
        else:
            _plain_state(inst, state)

    # -- keys ----------------------------------------------------------------
    def check_keys(self, keys: list[Any] | tuple[Any, ...]) -> None:
        """Refuse dict keys/set members whose hashes an attacker can make collide.

        Ints hash to themselves modulo 2**61 - 1, so wide ints can all land in
        one bucket; tuples and frozensets hash from their members (and tuple
        hashes are not cached), so they are checked and charged member by member.
        """
        self.charge(len(keys))
        cost = 0
        for key in keys:
            kind = type(key)
            if kind is int:
                if key.bit_length() > 64:
                    raise Refused(_WIDE_KEY)
            elif kind is tuple or kind is frozenset:
                cost += self._keycost(key, 0)
        self.charge(cost)

    def _keycost(self, key: Any, depth: int) -> int:
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
                total += self._keycost(item, depth + 1)
                if total > self._budget:
                    raise Refused("pickle too expensive to decode")
            self._key_costs[id(key)] = (key, total)
            return total
        return 1

    def charge(self, amount: int) -> None:
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
            raise Refused(f"appending to {describe(target)} is not allowed")

    def _set_items(self, target: Any, items: list[Any]) -> None:
        if len(items) % 2:
            raise pickle.UnpicklingError("odd number of items for SETITEMS")
        if type(target) is dict:
            mapping = target
        elif isinstance(target, Opaque):
            mapping = target.mapping
        else:
            raise Refused(f"setting items of {describe(target)} is not allowed")
        keys = items[0::2]
        self.check_keys(keys)
        mapping.update(zip(keys, items[1::2], strict=True))

    def _add_items(self, target: Any, items: list[Any]) -> None:
        if type(target) is set:
            self.check_keys(items)
            target.update(items)
        elif isinstance(target, Opaque):
            target.items.extend(items)
        else:
            raise Refused(f"adding to {describe(target)} is not allowed")


# Opcode handlers replacing the reference unpickler's for every opcode that
# calls, builds or mutates objects.


@_op(pickle.REDUCE)
def _load_reduce(self: RestrictedUnpickler) -> None:
    args = self.stack.pop()
    self.stack[-1] = self._call(self.stack[-1], args, {})


@_op(pickle.NEWOBJ)
def _load_newobj(self: RestrictedUnpickler) -> None:
    args = self.stack.pop()
    cls = self.stack.pop()
    self.append(self._newobj(cls, args, {}))


@_op(pickle.NEWOBJ_EX)
def _load_newobj_ex(self: RestrictedUnpickler) -> None:
    kwargs = self.stack.pop()
    args = self.stack.pop()
    cls = self.stack.pop()
    self.append(self._newobj(cls, args, kwargs))


def _instantiate(self: RestrictedUnpickler, klass: Any, args: list[Any]) -> None:
    if isinstance(klass, _OpaqueMeta) or args:
        self.append(self._call(klass, tuple(args), {}))
    else:
        self.append(self._newobj(klass, (), {}))


@_op(pickle.INST)
def _load_inst(self: RestrictedUnpickler) -> None:
    module = self.readline()[:-1].decode("ascii")
    name = self.readline()[:-1].decode("ascii")
    klass = self.find_class(module, name)
    _instantiate(self, klass, self.pop_mark())


@_op(pickle.OBJ)
def _load_obj(self: RestrictedUnpickler) -> None:
    args = self.pop_mark()
    if not args:
        raise pickle.UnpicklingError("OBJ without a class")
    klass = args.pop(0)
    _instantiate(self, klass, args)


@_op(pickle.BUILD)
def _load_build(self: RestrictedUnpickler) -> None:
    state = self.stack.pop()
    self._build(self.stack[-1], state)


@_op(pickle.APPEND)
def _load_append(self: RestrictedUnpickler) -> None:
    value = self.stack.pop()
    self._extend(self.stack[-1], [value])


@_op(pickle.APPENDS)
def _load_appends(self: RestrictedUnpickler) -> None:
    items = self.pop_mark()
    self._extend(self.stack[-1], items)


@_op(pickle.SETITEM)
def _load_setitem(self: RestrictedUnpickler) -> None:
    value = self.stack.pop()
    key = self.stack.pop()
    self._set_items(self.stack[-1], [key, value])


@_op(pickle.SETITEMS)
def _load_setitems(self: RestrictedUnpickler) -> None:
    items = self.pop_mark()
    self._set_items(self.stack[-1], items)


@_op(pickle.DICT)
def _load_dict(self: RestrictedUnpickler) -> None:
    items = self.pop_mark()
    mapping: dict[Any, Any] = {}
    self._set_items(mapping, items)
    self.append(mapping)


@_op(pickle.ADDITEMS)
def _load_additems(self: RestrictedUnpickler) -> None:
    items = self.pop_mark()
    self._add_items(self.stack[-1], items)


@_op(pickle.FROZENSET)
def _load_frozenset(self: RestrictedUnpickler) -> None:
    items = self.pop_mark()
    self.check_keys(items)
    self.append(frozenset(items))


def _refuse_extension(self: RestrictedUnpickler) -> None:
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
            raise Refused(f"state of {cls.__qualname__} may not set {short(key)}")
    inst.__dict__.update(state)


def _g_bytes(*args: Any) -> bytes:
    if args:
        raise Refused("bytes() is only allowed without arguments")
    return b""


def _g_encode(text: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
    if type(text) is not str or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise Refused("_codecs.encode is only allowed as encode(str, 'latin1')")
    return text.encode("latin-1")


# -- the protocol's own tables -----------------------------------------------


def _guard_set(unpickler: RestrictedUnpickler) -> Callable[..., Any]:
    return lambda items=(): set(unpickler._checked_members(items))


def _guard_frozenset(unpickler: RestrictedUnpickler) -> Callable[..., Any]:
    return lambda items=(): frozenset(unpickler._checked_members(items))


def _guard_reconstructor(unpickler: RestrictedUnpickler) -> Callable[..., Any]:
    return unpickler._g_reconstructor


PRIMITIVES: frozenset[Pair] = policy(
    {
        ("builtins", "set"): Guard(_guard_set),
        ("builtins", "frozenset"): Guard(_guard_frozenset),
        ("builtins", "bytes"): Guard(lambda _: _g_bytes),
        ("_codecs", "encode"): Guard(lambda _: _g_encode),
    }
)

OLD_PROTOCOL_INSTANCES: frozenset[Pair] = policy(
    {
        ("copyreg", "_reconstructor"): Guard(_guard_reconstructor),
        ("builtins", "object"): Base(),
    }
)


def loads(
    data: bytes | bytearray | memoryview,
    *,
    allow: frozenset[Pair] = PRIMITIVES,
    max_size: int = MAX_SIZE,
) -> Any:
    """Decode one pickle without importing or running what it names.

    ``allow`` is :data:`PRIMITIVES`, an allow-list of
    :mod:`taskwatch.sources.pickle_policies`, or any set of pairs registered
    with :func:`policy` (a pair with no reviewed rule is a ``ValueError``). Refused globals decode as
    :class:`Opaque` placeholders; everything else that goes wrong raises
    :class:`pickle.UnpicklingError` (:class:`Refused` for refusals).
    """
    unknown = {pair for pair in allow if not has_rule(pair)}
    if unknown:
        raise ValueError(f"no unpickling policy for {sorted(unknown)}")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"loads() needs bytes, not {type(data).__name__}")
    raw = bytes(data)
    if len(raw) > max_size:
        raise Refused(f"pickle of {len(raw)} bytes is over the {max_size}-byte limit")
    unpickler = RestrictedUnpickler(raw, frozenset(allow))
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
