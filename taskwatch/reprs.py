"""Decoded values as bounded, Python-repr-like text, as Celery's events show them.

Presentation of data, below every layer: the result backend renders stored
results and arguments with it, the engine renders exact argument values
(:class:`taskwatch.records.ExactCall`) the same way, so ``(7, 'pdf')`` reads
alike whatever the source. Safe on huge, deeply nested and self-referencing
values: writing stops at the length limit.

:class:`Opaque` lives here too: the inert stand-in that the restricted
unpickler (:mod:`taskwatch.sources.safe_pickle`) puts where a pickle named a
class it refused. It is data, shown by name and arguments.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from taskwatch.text import clean

if TYPE_CHECKING:
    from taskwatch.records import ExactCall

VALUE_LIMIT = 4096
ARGS_LIMIT = 2048


class _OpaqueMeta(type):
    """Metaclass of placeholder classes, so the class itself has a useful repr."""

    def __repr__(cls) -> str:
        return f"<opaque {cls.qualified_name}>"

    @property
    def qualified_name(cls) -> str:
        return f"{cls.__dict__.get('module', '?')}.{cls.__dict__.get('name', '?')}"


class Opaque(metaclass=_OpaqueMeta):
    """Stands in for a global the allow-list refused; its module is never imported.

    Each refused ``(module, name)`` gets its own subclass with ``module`` and
    ``name`` set. An instance records how the pickle built it: ``args`` and
    ``kwargs`` of the call, ``state`` of BUILD, ``items`` appended and
    ``mapping`` set (for list- and dict-like classes). Placeholders cannot be
    pickled again, so a decoded job can't be written back with holes in it.
    """

    module: ClassVar[str] = "?"
    name: ClassVar[str] = "?"
    __slots__ = ("args", "kwargs", "state", "items", "mapping")

    def __init__(self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> None:
        self.args = args
        self.kwargs: dict[str, Any] = dict(kwargs or {})
        self.state: Any = None
        self.items: list[Any] = []
        self.mapping: dict[Any, Any] = {}

    @property
    def qualified_name(self) -> str:
        return type(self).qualified_name

    def __repr__(self) -> str:
        return f"<opaque {self.qualified_name}>"

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(f"{self!r} is a placeholder and cannot be pickled")





class Full(Exception):
    pass


class Writer:
    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.room = limit

    def write(self, text: str) -> None:
        if len(text) > self.room:
            self.parts.append(text[: self.room])
            self.room = 0
            raise Full
        self.parts.append(text)
        self.room -= len(text)


_MAX_DEPTH = 24
_HIDDEN_MODULES = frozenset({"builtins", "exceptions", "__builtin__"})


def render(value: Any, limit: int = VALUE_LIMIT) -> str:
    """A Python-repr-like rendering of decoded data, at most about ``limit`` chars.

    Safe on huge, deeply nested and self-referencing values: it stops
    writing once ``limit`` is reached.
    """
    writer = Writer(limit + 1)
    try:
        _write(writer, value, 0)
    except Full:
        pass
    return clean("".join(writer.parts), limit, single_line=True)


def _write(w: Writer, value: Any, depth: int) -> None:
    if depth > _MAX_DEPTH:
        w.write("…")
        return
    if value is None or isinstance(value, bool | float):
        w.write(repr(value))
    elif isinstance(value, int):
        w.write(_int_text(value))
    elif isinstance(value, str):
        w.write(repr(value[: w.room + 1]))
    elif isinstance(value, bytes | bytearray):
        w.write(repr(bytes(value[: w.room + 1])))
    elif isinstance(value, list):
        _write_items(w, "[", value, "]", depth)
    elif isinstance(value, tuple):
        _write_items(w, "(", value, ",)" if len(value) == 1 else ")", depth)
    elif isinstance(value, dict):
        w.write("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                w.write(", ")
            _write(w, key, depth + 1)
            w.write(": ")
            _write(w, item, depth + 1)
        w.write("}")
    elif isinstance(value, set | frozenset):
        if not value:
            w.write("set()" if isinstance(value, set) else "frozenset()")
            return
        head, tail = ("{", "}") if isinstance(value, set) else ("frozenset({", "})")
        _write_items(w, head, value, tail, depth)
    elif isinstance(value, datetime | date | dtime | Decimal | uuid.UUID):
        w.write(repr(value))
    elif isinstance(value, Opaque):
        _write_opaque(w, value, depth)
    elif isinstance(value, type):
        w.write(repr(value) if isinstance(value, _OpaqueMeta) else "<class>")
    else:
        w.write(f"<{type(value).__name__}>")


def _write_items(w: Writer, head: str, items: Iterable[Any], tail: str, depth: int) -> None:
    w.write(head)
    for i, item in enumerate(items):
        if i:
            w.write(", ")
        _write(w, item, depth + 1)
    w.write(tail)


def _write_opaque(w: Writer, value: Opaque, depth: int) -> None:
    module, name = type(value).module, type(value).name
    if module == "celery.utils.serialization" and name == "UnpickleableExceptionWrapper":
        # (exc_module, exc_cls_name, exc_args, text)
        args = value.args
        if len(args) >= 3 and isinstance(args[1], str):
            write_call(w, args[0] if isinstance(args[0], str) else "", args[1], args[2], {}, depth)
            return
    if not value.args and not value.kwargs and value.state is None:
        w.write(repr(value))
        return
    if not value.args and not value.kwargs:
        write_call(w, module, name, (), {"state": value.state}, depth)
        return
    write_call(w, module, name, value.args, value.kwargs, depth)


def write_call(
    w: Writer, module: str, name: str, args: Any, kwargs: Mapping[Any, Any], depth: int
) -> None:
    w.write(name if module in _HIDDEN_MODULES or not module else f"{module}.{name}")
    w.write("(")
    first = True
    for arg in args if isinstance(args, list | tuple) else (args,):
        if not first:
            w.write(", ")
        _write(w, arg, depth + 1)
        first = False
    for key, item in kwargs.items():
        if not first:
            w.write(", ")
        w.write(f"{key}=" if isinstance(key, str) else "?=")
        _write(w, item, depth + 1)
        first = False
    w.write(")")


def _int_text(value: int) -> str:
    try:
        return repr(value)
    except ValueError:  # over sys.get_int_max_str_digits()
        return f"<int of {value.bit_length()} bits>"


def call_text(call: ExactCall, limit: int = ARGS_LIMIT) -> tuple[str, str]:
    """``(args, kwargs)`` display text of exact arguments: ``(7, 'pdf')``, ``{'a': 1}``."""
    return render(tuple(call.args), limit), render(dict(call.kwargs), limit)


# What the list-to-tuple scan stops at: brackets, quotes, commas, escapes.
_SCAN = re.compile(r"""[][(){}'",\\]""")
_CLOSES = {")": "(", "]": "[", "}": "{"}


def tuple_style(text: str) -> str:
    """A complete list repr as Celery's tuple style: ``[989, 'csv']`` -> ``(989, 'csv')``.

    Producers may send positional arguments as a list (``argsrepr`` of a
    list); Celery itself shows a tuple. Only text is known, so this scans it,
    aware of quotes and brackets, and never evaluates it. Anything that is not
    one whole top-level list (cut short with ``…``, unbalanced, ``[1] + [2]``)
    comes back unchanged; one element gets its trailing comma: ``(5,)``.
    """
    if len(text) < 2 or text[0] != "[" or text[-1] != "]":
        return text
    end = len(text) - 1
    opened: list[str] = []
    quote = ""
    skip = -1
    commas = 0
    for match in _SCAN.finditer(text):
        pos = match.start()
        if pos == skip:
            continue
        char = match.group()
        if quote:
            if char == "\\":
                skip = pos + 1
            elif char == quote:
                quote = ""
        elif char == "'" or char == '"':
            quote = char
        elif char in "([{":
            opened.append(char)
        elif char in _CLOSES:
            if not opened or opened.pop() != _CLOSES[char] or (not opened and pos != end):
                return text
        elif char == "," and len(opened) == 1:
            commas += 1
    if quote or opened:
        return text
    inner = text[1:-1]
    if not inner.strip():
        return "()"
    return f"({inner})" if commas else f"({inner},)"
