"""Read fast, decode behind: a bounded spool of raw bytes between a socket and its decoder.

Redis queues pub/sub messages per subscriber and cuts off one whose *unread*
bytes pass ``client-output-buffer-limit pubsub`` (32 MB by default), losing
all of them. A receiver that parses and applies each message in the thread
that reads the socket falls that far behind within seconds of a burst of
small messages (measured: ``bench/profile_receiver.py``). So the reading
thread only moves bytes off the socket into this spool (about a microsecond
a message), and a decoder thread splits, decodes and applies them behind it:
a burst becomes lag, not loss.

The spool is bounded (``limit`` bytes waiting to be decoded). Past it, the
reader keeps reading, so the server does not cut it off, but throws the bytes
away and counts them (``dropped``): the caller records that stretch as a gap.
Reading into the spool resumes once the decoder has brought it down to
``RESUME`` of the limit; a :class:`Break` tells the decoder that the bytes
after it do not continue the ones before (it must find the next message
start). A new connection is a :class:`Break` too.

Memory: blocks are anonymous ``mmap``\\ s, unmapped as soon as the decoder
is done with them, so a spent burst gives its memory back to the system
(``bytes`` chunks would stay in the allocator's heap).
"""

from __future__ import annotations

import mmap
import threading
from collections import deque
from dataclasses import dataclass

import hiredis

#: Bytes waiting to be decoded before the spool refuses more (a burst of
#: single-event messages at a publisher's full speed is about 40 MB a second).
DEFAULT_LIMIT = 256 * 1024 * 1024
#: Size of one block of the spool.
BLOCK = 4 * 1024 * 1024
#: After an overflow, reading into the spool resumes at this share of the limit.
RESUME = 0.75


@dataclass(frozen=True)
class Break:
    """The bytes that follow do not continue the ones before.

    ``resync``: they start at an arbitrary byte (bytes were dropped), not at
    the start of a message (a new connection).
    """

    resync: bool


class _Block:
    __slots__ = ("map", "view", "start", "end", "size")

    def __init__(self, size: int) -> None:
        self.map = mmap.mmap(-1, size)
        self.view = memoryview(self.map)
        self.size = size
        self.start = 0  # decoded up to here
        self.end = 0  # written up to here


class Spool:
    """One writer thread (the socket reader), one reader thread (the decoder)."""

    def __init__(self, limit: int = DEFAULT_LIMIT, block: int = BLOCK) -> None:
        if limit < block:
            block = max(limit, 4096)
        self.limit = limit
        self.block = block
        self._items: deque[_Block | Break] = deque()
        self._ready = threading.Event()
        self._scratch = memoryview(bytearray(256 * 1024))
        #: bytes ever taken in, ever handed to the decoder, thrown away
        self.written = 0
        self.consumed = 0
        self.dropped = 0
        #: refusing bytes now (an overflow is under way), and how many overflows so far
        self.full = False
        self.overflows = 0
        self._breaks = self._breaks_taken = 0

    @property
    def pending(self) -> int:
        """Bytes read off the socket and not yet handed to the decoder."""
        return self.written - self.consumed

    # -- the writer ------------------------------------------------------------
    def room(self) -> memoryview:
        """Where the next read goes: free room in the spool, or, while the spool
        is full, a scratch buffer whose bytes :meth:`commit` counts as dropped.
        Check :attr:`full` after calling it to see an overflow begin or end."""
        pending = self.written - self.consumed
        if self.full:
            if pending > self.limit * RESUME:
                return self._scratch
            self.full = False
            self._break(resync=True)
        elif pending >= self.limit:
            self.full = True
            self.overflows += 1
            return self._scratch
        items = self._items
        last = items[-1] if items else None
        if type(last) is not _Block or last.end == last.size:
            last = _Block(self.block)
            items.append(last)
        return last.view[last.end:]

    def commit(self, n: int) -> None:
        """``n`` bytes were read into the buffer :meth:`room` returned."""
        if self.full:
            self.dropped += n
            return
        block = self._items[-1]
        assert type(block) is _Block
        block.end += n
        self.written += n
        if not self._ready.is_set():
            self._ready.set()

    def mark(self, resync: bool = False) -> None:
        """What comes next does not continue what came before (a new connection)."""
        self._break(resync)
        self._ready.set()

    def _break(self, resync: bool) -> None:
        items = self._items
        if items and type(items[-1]) is _Block:
            items[-1].size = items[-1].end  # sealed: written no further, freed once read
        items.append(Break(resync))
        self._breaks += 1

    def wake(self) -> None:
        """Make a waiting :meth:`take` return (to stop)."""
        self._ready.set()

    # -- the reader --------------------------------------------------------------
    def take(self, timeout: float) -> list[memoryview | Break]:
        """What was written since the last call, in order; waits up to
        ``timeout`` seconds when there is nothing. The views are valid until
        the next call (their block may be unmapped then)."""
        items = self._items
        # Blocks the decoder has finished and the writer has left go now.
        while items and type(items[0]) is _Block and items[0].start == items[0].size:
            items.popleft()
        if not self._has_data():
            self._ready.clear()
            if not self._has_data():
                self._ready.wait(timeout)
        out: list[memoryview | Break] = []
        for item in list(items):  # a copy: the writer appends meanwhile
            if type(item) is Break:
                out.append(item)
                items.remove(item)  # at the left, or right behind fully read blocks
                self._breaks_taken += 1
                continue
            end = item.end
            if end > item.start:
                out.append(item.view[item.start:end])
                self.consumed += end - item.start
                item.start = end
        return out

    def _has_data(self) -> bool:
        return self.written > self.consumed or self._breaks > self._breaks_taken


#: How RESP2 frames a message delivered to a subscriber, by pattern or by channel.
_FRAME_STARTS = (b"*4\r\n$8\r\npmessage\r\n", b"*3\r\n$7\r\nmessage\r\n")
_FEED = 64 * 1024  # hiredis compacts its buffer after each reply: fed in slices


class PubSubFrames:
    """The payloads of pub/sub messages in a RESP2 byte stream (hiredis's C parser).

    Other replies (subscribe confirmations, PONG) are skipped. After a
    :class:`Break` with ``resync`` it skips to the next message start:
    message payloads here are JSON, which never holds a raw CR LF, so the
    framing cannot be faked from inside a well-formed message (a malformed
    one costs at most itself: it is counted as undecodable).
    """

    def __init__(self) -> None:
        self.errors = 0  # protocol errors (the parser restarted at the next message)
        self.reset(resync=False)

    def reset(self, resync: bool) -> None:
        self._reader = hiredis.Reader()
        self._resync = resync
        self._tail = b""

    def feed(self, data: memoryview | bytes, out: list[bytes]) -> None:
        """Append to ``out`` the payload of every message completed by ``data``."""
        if self._resync:
            data = self._find_start(data)
            if not data:
                return
        reader = self._reader
        gets = reader.gets
        size = len(data)
        for offset in range(0, size, _FEED):
            reader.feed(data[offset:offset + _FEED] if size > _FEED else data)
            try:
                while (reply := gets()) is not False:
                    if type(reply) is list and len(reply) in (3, 4):
                        kind = reply[0]
                        if kind == b"pmessage" or kind == b"message":
                            out.append(reply[-1])
            except hiredis.ProtocolError:
                self.errors += 1
                rest = data[offset + _FEED:] if size > _FEED else b""
                self.reset(resync=True)
                self.feed(rest, out)
                return

    def _find_start(self, data: memoryview | bytes) -> bytes:
        buffer = self._tail + bytes(data)
        found = [i for i in (buffer.find(s) for s in _FRAME_STARTS) if i >= 0]
        if not found:
            self._tail = buffer[-32:]
            return b""
        self._resync = False
        self._tail = b""
        return buffer[min(found):]


class BodySpool:
    """Whole message bodies between a reader thread (the one writer) and a
    decoder thread (the one reader): for a client that frames the messages
    itself (py-amqp), so only what it hands over can be spooled.

    Bounded by the bytes of the bodies waiting (``limit``), like
    :class:`Spool`: from the moment it holds ``limit`` bytes, what is put is
    dropped and counted (``dropped`` bytes, ``dropped_messages``) until the
    decoder has brought it down to ``RESUME`` of the limit. ``full`` says
    whether it is refusing now: the reader checks it to open and close the
    gap. Each item is ``(body, content type, epoch seconds when read)``.
    """

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._items: deque[tuple[bytes, str | None, float]] = deque()
        self._ready = threading.Event()
        #: bytes ever kept, ever handed to the decoder, thrown away; messages thrown away
        self.written = 0
        self.consumed = 0
        self.dropped = 0
        self.dropped_messages = 0
        #: refusing bodies now (an overflow is under way), and how many overflows so far
        self.full = False
        self.overflows = 0

    @property
    def pending(self) -> int:
        """Bytes of bodies put and not yet handed to the decoder."""
        return self.written - self.consumed

    # -- the writer ------------------------------------------------------------
    def put(self, body: bytes, content_type: str | None, read_at: float) -> None:
        if self.full or self.written - self.consumed >= self.limit:
            if not self.admits():
                self.dropped += len(body)
                self.dropped_messages += 1
                return
        self._items.append((body, content_type, read_at))
        self.written += len(body)
        if not self._ready.is_set():
            self._ready.set()

    def admits(self) -> bool:
        """Whether a body put now is kept; an overflow begins (``full``) at the
        limit and ends at ``RESUME`` of it. The reader calls it while full and
        idle too, so an overflow ends without another message arriving."""
        pending = self.written - self.consumed
        if self.full:
            if pending > self.limit * RESUME:
                return False
            self.full = False
        elif pending >= self.limit:
            self.full = True
            self.overflows += 1
            return False
        return True

    def wake(self) -> None:
        """Make a waiting :meth:`take` return (to stop)."""
        self._ready.set()

    # -- the reader --------------------------------------------------------------
    def take(self, timeout: float, most: int = 500) -> list[tuple[bytes, str | None, float]]:
        """Up to ``most`` items, oldest first; waits up to ``timeout`` seconds
        when there is none."""
        items = self._items
        if not items:
            self._ready.clear()
            if not items:
                self._ready.wait(timeout)
        out = []
        size = 0
        popleft = items.popleft
        for _ in range(min(most, len(items))):
            item = popleft()
            size += len(item[0])
            out.append(item)
        self.consumed += size
        return out
