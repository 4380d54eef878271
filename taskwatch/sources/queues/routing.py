"""kombu's routing rules for its Redis transport, copied as data functions.

Which queue an ``unacked`` entry goes back to (``Channel._lookup`` in
``kombu/transport/virtual/base.py``, ``virtual/exchange.py``), read off the
entry's end without parsing the message; the binding tables
``_kombu.binding.<exchange>`` and their members; topic matching exactly as
kombu builds its patterns. No I/O here: :mod:`.redis` reads the keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

#: kombu's binding sets: ``_kombu.binding.<exchange>`` and, since kombu 5.7,
#: ``_kombu.binding_permanent.<exchange>``
BINDING = "_kombu.binding."
BINDING_PERMANENT = "_kombu.binding_permanent."


def unacked_route(value: bytes) -> tuple[str, str]:
    """``(exchange, routing_key)`` of one ``unacked`` entry ``[message, exchange, routing_key]``.

    kombu writes the entry with ``dumps([message._raw, EX, RK])``
    (``QoS.append``), so the two strings are read off its end without
    parsing the message (:func:`tail_strings`, half the cost of a
    ``depths()`` on a big hash otherwise). Anything else is parsed whole,
    falling back on the message's ``properties.delivery_info``; ``("", "")``
    when neither can be read (counted nowhere).
    """
    tail = tail_strings(value)
    if tail is not None:
        return tail
    try:
        entry = json.loads(value)
    except (ValueError, RecursionError):
        return "", ""
    if isinstance(entry, list) and len(entry) >= 3:
        exchange, routing_key = entry[-2], entry[-1]
        if isinstance(exchange, str) and isinstance(routing_key, str):
            return exchange, routing_key
        message = entry[0]
    else:
        message = entry
    info: Any = message.get("properties") if isinstance(message, dict) else None
    info = info.get("delivery_info") if isinstance(info, dict) else None
    if isinstance(info, dict):
        exchange, routing_key = info.get("exchange") or "", info.get("routing_key") or ""
        if isinstance(exchange, str) and isinstance(routing_key, str):
            return exchange, routing_key
    return "", ""


_WHITESPACE = frozenset(b" \t\r\n")


def tail_strings(value: bytes) -> tuple[str, str] | None:
    """The last two strings of ``[{...}, "exchange", "routing_key"]``, read backwards.

    Linear time, no copies of the message; None unless the entry ends
    exactly like that. A JSON string's opening quote is the first quote,
    going left from its closing one, preceded by an even number of
    backslashes.
    """
    position = _skip_space_left(value, len(value))
    if position < 1 or value[position - 1] != ord("]"):
        return None
    position -= 1
    found: list[str] = []
    for _ in range(2):
        position = _skip_space_left(value, position)
        if position < 1 or value[position - 1] != ord('"'):
            return None
        close = position - 1
        start = close
        while True:
            start = value.rfind(b'"', 0, start)
            if start < 0:
                return None
            backslash = start
            while backslash > 0 and value[backslash - 1] == ord("\\"):
                backslash -= 1
            if (start - backslash) % 2 == 0:
                break
        try:
            text = json.loads(value[start : close + 1])
        except ValueError:
            return None
        if not isinstance(text, str):
            return None
        found.append(text)
        position = _skip_space_left(value, start)
        if position < 1 or value[position - 1] != ord(","):
            return None
        position -= 1
    position = _skip_space_left(value, position)
    if position < 1 or value[position - 1] != ord("}"):
        return None
    routing_key, exchange = found
    return exchange, routing_key


def _skip_space_left(value: bytes, position: int) -> int:
    while position > 0 and value[position - 1] in _WHITESPACE:
        position -= 1
    return position


def topic_match(binding_key: str, routing_key: str) -> bool:
    r"""Topic matching exactly as kombu's ``TopicExchange.key_to_pattern`` builds it.

    ``*`` is one word, ``#`` any text (``.*?``); the words are joined with
    ``\.``, so ``orders.#`` matches ``orders.x`` but not ``orders`` (unlike
    RabbitMQ, where ``#`` may match zero words).
    """
    words = [
        r"[^.]+" if word == "*" else r".*?" if word == "#" else re.escape(word)
        for word in binding_key.split(".")
    ]
    return re.match(r"\.".join(words) + r"\Z", routing_key) is not None


def text_of(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def parse_binding(member: bytes | str, sep: str) -> tuple[str, str, str] | None:
    """``(routing_key, pattern, queue)`` of one member of a ``_kombu.binding.*`` set."""
    # kombu: member = sep.join([routing_key, pattern, queue]); get_table splits on sep.
    parts = text_of(member).split(sep)
    if len(parts) < 3:
        return None
    return parts[0], parts[1], sep.join(parts[2:])


def unacked_queues(
    exchange: str,
    routing_key: str,
    tables: Mapping[str, list[tuple[str, str, str]]],
    names: set[str],
) -> set[str]:
    """The queue(s) an ``unacked`` entry belongs to.

    The same rule as kombu's restore (``Channel._lookup`` in
    ``kombu/transport/virtual/base.py`` and ``virtual/exchange.py``):

    1. no exchange (Celery's default for ``send_task(queue=...)``): the
       routing key is the queue;
    2. otherwise the exchange's binding table: a binding with a pattern is
       a topic binding (``*`` one word, ``#`` any text, matched on the
       binding key, not the stored regex), one without is direct
       (routing key equal). A message routed to several queues counts
       for each, as kombu would restore a copy to each;
    3. no table or no match: the routing key, if it names a queue asked
       about (the usual ``exchange == routing key == queue`` setup).
    """
    if not exchange:
        return {routing_key} if routing_key else set()
    found: set[str] = set()
    for binding_key, pattern, queue in tables.get(exchange, ()):
        if pattern:
            if topic_match(binding_key, routing_key):
                found.add(queue)
        elif binding_key == routing_key:
            found.add(queue)
    if not found and routing_key in names:
        found.add(routing_key)
    return found
