"""Demo traffic: ``python -m taskwatch.demo.producer``.

Sends a few tasks a second to the demo app: successes, failures, retries,
ETA/countdown tasks, prioritised reports, and now and then a "hostile" task
whose arguments carry Rich markup and terminal escapes (a UI must show them
literally). It also keeps a backlog of 20-60 messages on the ``reports``
queue, which a single slow worker process consumes. SIGTERM, SIGINT and SIGHUP
stop it cleanly.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

import redis
from kombu.exceptions import OperationalError

from taskwatch.demo.app import (
    DEFAULT_BROKER_URL,
    REPORT_FORMATS,
    add,
    crunch_numbers,
    ping_service,
    process_report,
    send_email,
)

log = logging.getLogger("taskwatch.demo.producer")

BACKLOG_QUEUE = "reports"
BACKLOG_LOW = 20
BACKLOG_HIGH = 60
#: kombu's Redis transport keeps priorities 1-9 in extra lists named
#: ``<queue>\x06\x16<step>``; on Redis the plain list (priority 0) is consumed
#: first, so messages there starve while the backlog lasts.
PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)
MAX_STARVING_PRIORITY = 10
HOSTILE_CHANCE = 1 / 20

HOSTILE_TEXT = "[bold red]pwned[/] \x1b]0;owned\x07 \x1b[2J"

RECIPIENTS = (
    "alice@example.com",
    "bob@example.org",
    "carol@shop.example",
    "dave@example.net",
    "billing@example.com",
)
SUBJECTS = ("Your order has shipped", "Invoice #{n}", "Password reset", "Weekly digest")
SERVICES = (
    "https://api.example.com/health",
    "https://payments.example.com/ping",
    "https://search.example.com/status",
)


class Producer:
    """One call to `step()` sends one task (or tops up the backlog)."""

    def __init__(self, client: redis.Redis, rng: random.Random | None = None) -> None:
        self._redis = client
        self._rng = rng or random.Random()
        self.sent = 0
        self._actions: list[tuple[Callable[[], None], int]] = [
            (self._email, 30),
            (self._bad_email, 3),
            (self._ping, 15),
            (self._add, 15),
            (self._crunch, 3),
            (self._prioritised_report, 5),
            (self._eta_task, 6),
        ]

    # -- queue lengths -------------------------------------------------------

    def _llen(self, key: str) -> int:
        return int(self._redis.llen(key))

    def _starving(self) -> int:
        return sum(self._llen(f"{BACKLOG_QUEUE}{PRIORITY_SEP}{step}") for step in PRIORITY_STEPS)

    def backlog(self) -> int:
        """Messages waiting in the backlog queue's plain (priority 0) list."""
        return self._llen(BACKLOG_QUEUE)

    # -- actions -------------------------------------------------------------

    def step(self) -> None:
        if self.backlog() < BACKLOG_LOW:
            self.top_up()
            return
        if self._rng.random() < HOSTILE_CHANCE:
            self.hostile()
            return
        functions, weights = zip(*self._actions, strict=True)
        self._rng.choices(functions, weights)[0]()

    def top_up(self) -> None:
        missing = BACKLOG_HIGH - self.backlog()
        for _ in range(max(0, missing)):
            process_report.delay(self._report_id(), self._rng.choice(REPORT_FORMATS))
            self.sent += 1
        log.info("topped up %s backlog with %d reports", BACKLOG_QUEUE, missing)

    def hostile(self) -> None:
        """Arguments a UI must never interpret as markup or escapes."""
        variant = self._rng.randrange(3)
        if variant == 0:
            send_email.delay(HOSTILE_TEXT, "hi")
        elif variant == 1:
            process_report.delay(666, "[link=file:///etc/passwd]x[/link]\x1b[31m")
        else:
            send_email.apply_async(
                args=["ops@example.com", "\x1b[1;31mURGENT\x1b[0m [red]rm -rf /[/red]\r\n"],
                kwargs={"body": "\u202eevil\u202c \x1b[?1049h"},
            )
        self.sent += 1
        log.info("sent a hostile task (variant %d)", variant)

    def _email(self) -> None:
        subject = self._rng.choice(SUBJECTS).format(n=self._rng.randint(1000, 9999))
        send_email.delay(self._rng.choice(RECIPIENTS), subject, body="Hello!\n" * 3)
        self.sent += 1

    def _bad_email(self) -> None:
        send_email.delay("no-at-sign.example.com", "Welcome")
        self.sent += 1

    def _ping(self) -> None:
        ping_service.delay(self._rng.choice(SERVICES))
        self.sent += 1

    def _add(self) -> None:
        add.delay(self._rng.randint(0, 100), self._rng.randint(0, 100))
        self.sent += 1

    def _crunch(self) -> None:
        crunch_numbers.delay(self._rng.randint(2, 8))
        self.sent += 1

    def _prioritised_report(self) -> None:
        priority = self._rng.randint(0, 9)
        if priority and self._starving() >= MAX_STARVING_PRIORITY:
            priority = 0
        process_report.apply_async(
            args=[self._report_id(), self._rng.choice(REPORT_FORMATS)], priority=priority
        )
        self.sent += 1

    def _eta_task(self) -> None:
        countdown = self._rng.randint(30, 300)
        if self._rng.random() < 0.5:
            add.apply_async((self._rng.randint(0, 9), self._rng.randint(0, 9)), countdown=countdown)
        else:
            send_email.apply_async(
                (self._rng.choice(RECIPIENTS), "Your trial ends soon"), countdown=countdown
            )
        self.sent += 1

    def _report_id(self) -> int:
        return self._rng.randint(1, 999)

    # -- loop ----------------------------------------------------------------

    def run(self, stop: threading.Event, rate: float = 3.0) -> None:
        """Send about `rate` tasks a second until `stop` is set."""
        mean_pause = 1.0 / rate
        while not stop.is_set():
            try:
                self.step()
            except (OperationalError, redis.RedisError) as exc:
                log.warning("broker unavailable (%s); retrying in 2 s", exc)
                stop.wait(2.0)
                continue
            stop.wait(self._rng.uniform(0.5 * mean_pause, 1.5 * mean_pause))


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, request_stop)
    broker_url = os.environ.get("CELERY_BROKER_URL", DEFAULT_BROKER_URL)
    client = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
    producer = Producer(client)
    log.info("producing demo traffic on %s", broker_url)
    producer.run(stop)
    log.info("stopped after sending %d tasks", producer.sent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
