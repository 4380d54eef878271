"""A TCP relay to a real server that a test can freeze: while frozen it passes
no byte either way and closes nothing (a half-open link, or a reader that
does not read: the server's socket buffers fill and it holds the rest)."""

from __future__ import annotations

import socket
import threading


class FreezableLink:
    """Listens on 127.0.0.1:``port``; each connection is relayed to ``upstream``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.frozen = threading.Event()
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port: int = self._server.getsockname()[1]
        self._links: list[socket.socket] = []

    def __enter__(self) -> FreezableLink:
        threading.Thread(target=self._accept, name="test-link-accept", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for sock in (*self._links, self._server):
            sock.close()

    def freeze(self) -> None:
        self.frozen.set()

    def thaw(self) -> None:
        self.frozen.clear()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:  # closed at the end of the test
                return
            upstream = socket.create_connection(self.upstream)
            self._links.extend((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), name="test-link-pump", daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        src.settimeout(0.1)
        while not self._stop.is_set():
            if self.frozen.is_set():
                self._stop.wait(0.02)
                continue
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                dst.close()
                return
            if not self._send(dst, data):
                return

    def _send(self, dst: socket.socket, data: bytes) -> bool:
        """All of ``data``, however long a slow reader makes it wait (the
        socket's 0.1 s timeout is for noticing the end); False when it broke."""
        view = memoryview(data)
        while view:
            try:
                view = view[dst.send(view):]
            except TimeoutError:
                if self._stop.is_set():
                    return False
            except OSError:
                return False
        return True
