"""``taskwatch`` command line: the TUI, ``snapshot``, ``demo`` and ``config``.

Errors the user can fix (bad flags, bad URLs, an unreachable broker, a
module that does not import) print one line on stderr and exit 2.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from typing import Any

import click

from taskwatch import __version__
from taskwatch.config import ConfigError, Settings, number, resolve
from taskwatch.sources.errors import SourceError
from taskwatch.text import clean, mask_secrets, mask_url

EXIT_USAGE = 2
EXIT_BROKER_DOWN = 1  # snapshot: the document is printed, but the broker did not answer at the end
ROUND_WAIT = 10.0  # seconds snapshot waits for a round of asking, beyond --inspect-timeout
DRAIN_MAX = 10.0  # seconds snapshot --listen waits, after listening, for events already read
DEMO_APP = "taskwatch.demo.app"

_COMMON = [
    click.option("-A", "--app", "app", metavar="APP", help="Celery app to load, as with `celery -A` (module, module:attr, package)."),
    click.option("-b", "--broker", "broker_url", metavar="URL", help="Broker URL (redis://, amqp://, ...). Env: CELERY_BROKER_URL."),
    click.option("--result-backend", "result_backend", metavar="URL", help="Result backend URL. Env: CELERY_RESULT_BACKEND."),
    click.option("--jobstore", "jobstores", metavar="URL", multiple=True, help="APScheduler job store to read: redis://host/db, postgresql://…, mysql://…, sqlite:///file, mongodb://… (repeatable). Env: TASKWATCH_JOBSTORE."),
    click.option("--beat-schedule", "beat_schedule", metavar="FILE", help="Celery beat's schedule file (celerybeat-schedule), read from a copy. Env: TASKWATCH_BEAT_SCHEDULE."),
    click.option("--beat", "beat", type=click.Choice(["redbeat"]), default=None, help="Read beat's state from celery-redbeat's keys (detected from the app's beat_scheduler too). Env: TASKWATCH_BEAT."),
    click.option("--beat-db", "beat_db", metavar="URL", help="django-celery-beat's database (postgresql://…, mysql://…, sqlite:///…), read-only. Env: TASKWATCH_BEAT_DB."),
    click.option("--bridge", "bridge", metavar="URL", help="Redis where taskwatch.bridge announces itself, if not a Redis job store or the broker. Env: TASKWATCH_BRIDGE."),
    click.option("--read-only/--read-write", "read_only", default=None, help="Refuse every action that changes the cluster."),
    click.option("--inspect-timeout", "inspect_timeout", metavar="SECONDS", help="How long to wait for workers to answer (default 1)."),
    click.option("--max-tasks", "max_tasks", metavar="N", help="Tasks kept in memory, finished ones evicted first (default 100000)."),
    click.option("--backfill", "backfill", metavar="N", help="Recent finished tasks loaded from the result backend at start (default 500)."),
    click.option("--rabbitmq-api", "rabbitmq_api", metavar="URL", help="RabbitMQ management API for queue depths, e.g. http://guest:guest@rabbit:15672."),
    click.option("--profile", "profile", metavar="NAME", help="Profile from the config file. Env: TASKWATCH_PROFILE."),
    click.option("--config", "config_file", metavar="FILE", help="Config file (default: the user config dir's taskwatch/config.toml)."),
]


def common_options(func):
    for option in reversed(_COMMON):
        func = option(func)
    return func


def _merged(ctx: click.Context, **own: Any) -> dict[str, Any]:
    """Options given to the group, overridden by those given to the subcommand."""
    values = dict(ctx.obj or {})
    values.update({k: v for k, v in own.items() if v is not None and v != ()})
    return values


def load_settings(values: dict[str, Any]) -> tuple[Settings, Any]:
    """Resolve settings, import the ``-A`` app, check there is a broker."""
    options = dict(values)
    config_file = options.pop("config_file", None)
    profile = options.pop("profile", None)
    settings = resolve(options, config_file=config_file, profile=profile)
    settings.check_urls()
    app = None
    if settings.app:
        from taskwatch.sources.celery_app import app_urls, load_app

        app = load_app(settings.app)
        settings = settings.with_app_defaults(*app_urls(app))
        settings.check_urls()
    if not settings.broker_url:
        raise ConfigError(
            "no broker: pass -b URL or -A APP, set CELERY_BROKER_URL, or add broker_url to a config profile"
        )
    _check_result_backend(settings.result_backend)
    _check_schedule_sources(settings, app)
    return settings, app


def _check_schedule_sources(settings: Settings, app: Any) -> None:
    """Refuse a job store URL or beat setting taskwatch cannot use before anything
    starts (one line, exit 2); builds nothing, connects nowhere."""
    from taskwatch.sources.factory import schedule_sources

    schedule_sources(settings, app.conf if app is not None else None, settings.broker_url or "")


def _check_result_backend(url: str | None) -> None:
    """Refuse a Redis result backend URL the reader would refuse, before anything starts.

    The same parser as the reader's (one per scheme), so ``redis://h/x`` is
    refused up front as ``-b redis://h/x`` is, not reported later as a
    warning while the views stay empty. Other schemes are left to the reader.
    """
    scheme = url.split("://", 1)[0].lower() if url and "://" in url else ""
    if scheme in ("redis", "rediss"):
        from taskwatch.sources.redis_url import parse_redis_url

        parse_redis_url(url, what="result backend URL")


class NoTerminal(click.ClickException):
    """The full-screen UI cannot run here: one line, exit 2."""

    exit_code = EXIT_USAGE


def require_terminal(stdin=None, stdout=None, env: dict[str, str] | None = None, stderr=None) -> None:
    """Refuse the TUI where it cannot work, before it writes a byte.

    Without a terminal on every end (``ssh host taskwatch`` without ``-t``,
    output to a file or a pipe) Textual would still start, write escape codes
    and take no keys. Textual draws on stderr and reads stdin; stdout to a
    file means the user wanted text, which is ``taskwatch snapshot``.
    ``TERM=dumb`` (or no TERM at all) says the terminal cannot place a
    cursor, so full-screen drawing is refused likewise rather than guessed at.
    """
    env = os.environ if env is None else env
    hint = "use `ssh -t host taskwatch ...`, or `taskwatch snapshot` for plain text"
    streams = (("output", sys.stdout if stdout is None else stdout),
               ("error output", sys.stderr if stderr is None else stderr),
               ("input", sys.stdin if stdin is None else stdin))
    for name, stream in streams:
        try:
            is_tty = stream is not None and stream.isatty()
        except (ValueError, OSError):  # closed or detached
            is_tty = False
        if not is_tty:
            raise NoTerminal(f"the full-screen UI needs a terminal and its {name} is not one: {hint}")
    term = env.get("TERM", "").strip()
    if term in ("", "dumb"):
        shown = f"TERM={term}" if term else "TERM is not set"
        raise NoTerminal(f"the full-screen UI cannot draw with {shown}: set TERM (e.g. xterm-256color), {hint}")


class _Group(click.Group):
    def format_epilog(self, ctx, formatter):
        formatter.write_paragraph()
        formatter.write_text(
            "Without a command, opens the TUI. Settings come from the command line, then "
            "TASKWATCH_* / CELERY_BROKER_URL / CELERY_RESULT_BACKEND, then the config file."
        )


@click.group(cls=_Group, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="taskwatch")
@common_options
@click.pass_context
def cli(ctx: click.Context, **options: Any) -> None:
    """A terminal UI to watch and fix Celery clusters and their schedulers."""
    ctx.obj = {k: v for k, v in options.items() if v is not None and v != ()}
    if ctx.invoked_subcommand is not None:
        return
    settings, app = load_settings(ctx.obj)
    from taskwatch.sources.broker import probe

    with _saying(f"taskwatch: connecting to {mask_url(settings.broker_url)}…"):
        probe(settings.broker_url, timeout=3.0)
    require_terminal()
    code = _run_tui(settings, app)
    _leave_now_if_stuck(code)
    ctx.exit(code)


@contextlib.contextmanager
def _saying(line: str):
    """``line`` on the terminal while the block runs (the first thing the user
    sees, however long the broker takes), erased after it."""
    try:
        require_terminal()  # (a terminal that can draw: else the UI is refused in one line)
        shown = True
    except NoTerminal:
        shown = False
    if shown:
        sys.stderr.write(clean(line, 200, single_line=True))
        sys.stderr.flush()
    try:
        yield
    finally:
        if shown:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()


def _leave_now_if_stuck(code: int) -> None:
    """The UI has quit: give the shell back now, even when a thread is still
    waiting on a broker that does not answer (Python would wait for it at exit:
    the inspect pool's threads are not daemons)."""
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _run_tui(settings: Settings, app: Any = None, cleanups: list | None = None) -> int:
    from rich.console import Console

    from taskwatch.ui.app import TaskwatchApp
    from taskwatch.ui.collector import freeze_startup_objects
    from taskwatch.ui.format import theme_for

    # The terminal's colours as Rich reads them (TERM, COLORTERM, NO_COLOR) on
    # stderr, where Textual draws: 16 colours get the ANSI theme.
    theme = theme_for(Console(file=sys.stderr).color_system)
    tui = TaskwatchApp(settings, celery_app=app, cleanups=cleanups, theme=theme)
    freeze_startup_objects()
    result = tui.run()
    return result if isinstance(result, int) else (tui.return_code or 0)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema documented in the README).")
@click.option("--listen", "listen_text", default="0", metavar="SECONDS",
              help="Ingest events for this long before printing (default: no events, one round of asking).")
@common_options
@click.pass_context
def snapshot(ctx: click.Context, as_json: bool, listen_text: str, **options: Any) -> None:
    """Print the cluster's state once, without the UI."""
    import resource

    from taskwatch.engine import snapshot as snap
    from taskwatch.monitor import Monitor
    from taskwatch.records import BROKER
    from taskwatch.sources.broker import probe

    # Numbers are checked like the settings' (NUMBERS), before anything connects.
    listen = float(number("listen", listen_text, "command line"))
    settings, app = load_settings(_merged(ctx, **options))
    probe(settings.broker_url, timeout=3.0)
    monitor = Monitor.from_settings(settings, app, events=listen > 0)
    # A round waits on the broker at most this long (it may be frozen: the
    # document is printed on time anyway, saying so).
    round_wait = ROUND_WAIT + settings.inspect_timeout
    with monitor:
        deadline = time.monotonic() + listen
        if listen:
            _wait_for(lambda: monitor.events_connected, min(listen, 3.0))
        first = _Round(monitor)
        report = None
        if listen:
            time.sleep(max(0.0, deadline - time.monotonic()))
            # What was read while listening is applied before the document is made
            # (a burst's backlog may still be in the receiver's spool), within bounds.
            left = monitor.drain_events(min(DRAIN_MAX, max(listen, 1.0)))
            broker = monitor.broker_health
            if broker is not None and broker.down:  # known not to answer: a short last chance
                round_wait = min(round_wait, 2.0 + settings.inspect_timeout)
            until = time.monotonic() + round_wait
            if first.wait(round_wait):  # rounds never overlap
                report = _Round(monitor).wait(until - time.monotonic())  # repairs gaps seen while listening
            report = report or _unanswered(monitor, round_wait)
            if left:
                report.errors.append(f"events: {left / 2**20:.1f} MB read while listening were not applied "
                                     f"within {DRAIN_MAX:g} s after it and are left out")
        else:
            report = first.wait(round_wait) or _unanswered(monitor, round_wait)
        report.errors.extend(monitor.poll_schedules())
        monitor.finish_failure_scan(report)  # every failure stored, within its bounds
    # The broker failing after the start is part of the picture, not a reason
    # to print none: the document says so (broker_error, health), exit 1.
    broker_error = report.workers.broker_error if report.workers is not None else None
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    health = sorted(monitor.health.values(), key=lambda h: (h.source != BROKER, h.source))
    document = snap.build(monitor.state, settings.broker_url, now=time.time(), peak_rss_bytes=peak_rss,
                          schedules=monitor.schedules, broker_error=broker_error, health=health)
    for error in report.errors:
        click.echo(f"taskwatch: warning: {error}", err=True)
    if as_json:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        click.echo(_format_snapshot(document))
    if broker_error:
        ctx.exit(EXIT_BROKER_DOWN)


class _Round:
    """One round of asking, on a thread of its own, waited for within a bound."""

    def __init__(self, monitor: Any) -> None:
        self.report = None
        self._thread = threading.Thread(target=self._run, args=(monitor,), daemon=True,
                                        name="taskwatch-snapshot-round")
        self._thread.start()

    def _run(self, monitor: Any) -> None:
        self.report = monitor.poll()

    def wait(self, seconds: float) -> Any:
        """The round's report, or None when it has not ended within ``seconds``."""
        self._thread.join(max(0.0, seconds))
        return self.report


def _unanswered(monitor: Any, waited: float) -> Any:
    """The report of a round the broker did not end in time: it is not answering."""
    from taskwatch.monitor import PollReport
    from taskwatch.records import BROKER, WorkerReport
    from taskwatch.sources.errors import NOT_ANSWERING

    now = time.time()
    error = f"broker {mask_url(monitor.broker_url)}: no answer within {waited:g} s"
    monitor.set_health(BROKER, error, now, reason=NOT_ANSWERING)
    return PollReport(started_at=now, workers=WorkerReport(now, broker_error=error), errors=[error])


def _epoch(iso_text: str | None) -> float | None:
    from datetime import datetime

    return None if iso_text is None else datetime.fromisoformat(iso_text.replace("Z", "+00:00")).timestamp()


def _wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]


def _dash(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def _format_snapshot(doc: dict[str, Any]) -> str:
    def cell(value: Any, limit: int = 60) -> str:
        return clean(_dash(value), limit, single_line=True)

    lines = [f"broker  {doc['broker']}", f"taken   {doc['taken_at']}"]
    for health in doc.get("health", ()):
        if health["state"] == "down":
            last = f", last answered {health['last_ok']}" if health["last_ok"] else ""
            lines.append(f"down    {cell(health['source'], 80)}: {health['reason']} since {health['since']}{last}")
    lines.append("")
    workers = [("WORKER", "STATE", "SEEN", "ACTIVE", "PROCESSED", "POOL", "CONC", "QUEUES")]
    for w in doc["workers"]:
        workers.append((
            cell(w["hostname"]), "online" if w["online"] else "offline",
            "-" if w["heartbeat_age"] is None else f"{w['heartbeat_age']:.0f}s",
            _dash(w["active"]), _dash(w["processed"]), _dash(w["pool"]), _dash(w["concurrency"]),
            cell(", ".join(w["queues"]), 80),
        ))
    lines += _table(workers) if len(workers) > 1 else ["no worker answered"]
    if doc["queues"]:
        queues = [("QUEUE", "READY", "BY PRIORITY", "UNACKED", "CONSUMERS")]
        for q in doc["queues"]:
            by_priority = " ".join(f"{k}:{v}" for k, v in q["by_priority"].items())
            queues.append((cell(q["name"]), _dash(q["messages"]), by_priority or "-", _dash(q["unacked"]),
                           _dash(q["consumers"]) if not q["error"] else cell(q["error"])))
        lines += ["", *_table(queues)]
    if doc["task_stats"]:
        stats = [("TASK NAME", "OK", "FAILED", "RETRIED", "FAIL%", "P50", "P95")]
        for t in doc["task_stats"]:
            ratio = t["failure_ratio"]
            stats.append((
                cell(t["name"]), str(t["succeeded"]), str(t["failed"]), str(t["retried"]),
                "-" if ratio is None else f"{ratio:.0%}",
                "-" if t["runtime_p50"] is None else f"{t['runtime_p50']:.3f}s",
                "-" if t["runtime_p95"] is None else f"{t['runtime_p95']:.3f}s",
            ))
        lines += ["", *_table(stats)]
    if doc["tasks"]:
        tasks = [("TASK ID", "NAME", "STATE", "WORKER", "ARGS", "EXCEPTION")]
        for t in doc["tasks"][:20]:
            tasks.append((cell(t["id"], 60), cell(t["name"], 40), t["state"] + ("*" if t["recovered"] else ""),
                          cell(t["worker"], 30), cell(t["args"], 30), cell(t["exception"], 50)))
        lines += ["", *_table(tasks)]
        if len(doc["tasks"]) > 20:
            lines.append(f"... {len(doc['tasks']) - 20} more (--json for all); * = recovered after a gap")
    if doc["schedules"]:
        from taskwatch.ui.format import relative, run_day

        now = time.time()
        schedules = [("SCHEDULED", "FROM", "NEXT RUN", "IN", "SCHEDULE", "RUNS")]
        for j in doc["schedules"]:
            ts = _epoch(j["next_run"])
            if j["error"]:
                when, until = "undecodable", cell(j["error"], 60)
            elif j["paused"]:
                when, until = "paused", "-"
            elif ts is None:
                when, until = "-", "-"
            else:
                when = run_day(ts, now)
                until = ("LATE " if j.get("late") else "OVERDUE " if j.get("overdue") else "") + relative(ts, now)
            schedules.append((cell(j["name"] or j["id"], 30), "beat" if j["source"] == "beat" else "aps",
                              when, until, cell(j["trigger"], 40), cell(j.get("task") or j.get("func"), 50)))
        lines += ["", *_table(schedules)]
    for store in doc["schedule_stores"]:
        if store["error"]:
            lines.append(f"schedule store {cell(store['store'], 80)}: {cell(store['error'], 160)}")
    s = doc["stats"]
    lines += ["", f"events {s['events_received']}, tasks seen {s['tasks_seen']}, gaps {len(s['gaps'])}"]
    for gap in s["gaps"]:
        lines.append(f"  gap {gap['start']} .. {gap['end'] or 'now'}: {cell(gap['reason'], 120)}")
    return "\n".join(lines)


@cli.command("config")
@common_options
@click.pass_context
def show_config(ctx: click.Context, **options: Any) -> None:
    """Show the settings in force and where each one came from (secrets masked)."""
    values = _merged(ctx, **options)
    values.pop("config_file", None), values.pop("profile", None)
    settings = resolve(
        {k: v for k, v in values.items()},
        config_file=_merged(ctx, **options).get("config_file"),
        profile=_merged(ctx, **options).get("profile"),
    )
    from taskwatch.text import remember_secrets

    remember_secrets(*(url for _what, url in settings.urls()))
    click.echo(f"config file  {settings.config_file or '(none)'}")
    click.echo(f"profile      {settings.profile or '(none)'}")
    for name, shown, origin in settings.describe():
        click.echo(f"{name:<17}{shown:<50} {origin}")


@cli.command()
@click.option("--headless", is_flag=True, help="No UI: print the URLs and run until SIGINT/SIGTERM.")
def demo(headless: bool) -> None:
    """Start a private demo cluster (Redis, 2 workers, beat, APScheduler, traffic) and watch it."""
    from taskwatch.demo.cluster import run

    if not headless:
        require_terminal()

    def open_ui(cluster) -> int:
        from taskwatch.sources.celery_app import load_app

        settings = Settings(
            app=DEMO_APP,
            broker_url=cluster.broker_url,
            result_backend=cluster.result_backend,
            jobstores=(cluster.jobstore_url,),
            beat_schedule=str(cluster.beat_schedule),
            profile="demo",
            origins={"app": "demo", "broker_url": "demo", "result_backend": "demo", "jobstores": "demo",
                     "beat_schedule": "demo"},
        )
        # The demo app's beat schedule, queues and routes feed the views.
        return _run_tui(settings, load_app(DEMO_APP), cleanups=[cluster.stop])

    sys.exit(run(headless=headless, open_ui=open_ui))


#: The longest error line: a 100,000-character URL must not make a 100 KB line.
MAX_ERROR = 300


def _error(message: str) -> None:
    """``taskwatch: message`` on stderr: one line, its long words cut in the middle, bounded."""
    from taskwatch.text import clean, shorten_words

    click.echo(f"taskwatch: {clean(shorten_words(message), MAX_ERROR, single_line=True)}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one-line errors, never a traceback."""
    try:
        rc = cli.main(args=argv, prog_name="taskwatch", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # pragma: no cover - not enabled
        _error(exc.format_message())
        rc = EXIT_USAGE
    except click.UsageError as exc:
        sub = f"{exc.ctx.info_name} " if exc.ctx is not None and exc.ctx.parent is not None else ""
        from taskwatch.text import clean, shorten_words

        message = clean(shorten_words(exc.format_message()), MAX_ERROR - 40, single_line=True)
        _error(f"{message} (see `taskwatch {sub}--help`)")
        rc = EXIT_USAGE
    except (ConfigError, SourceError) as exc:
        _error(str(exc))
        rc = EXIT_USAGE
    except click.ClickException as exc:
        _error(exc.format_message())
        rc = exc.exit_code
    except click.exceptions.Abort:
        _error("aborted")
        rc = 130
    except KeyboardInterrupt:
        rc = 130
    except Exception as exc:  # noqa: BLE001 - a bug: say so in one line, keep the details reachable
        if os.environ.get("TASKWATCH_DEBUG"):
            import traceback

            # The whole traceback, as asked, but with every password masked.
            sys.stderr.write(mask_secrets("".join(traceback.format_exc())))
            sys.exit(1)
        from taskwatch.text import clean, shorten_words

        detail = clean(shorten_words(mask_secrets(str(exc))), MAX_ERROR - 100, single_line=True)
        _error(f"internal error: {type(exc).__name__}: {detail} (run with TASKWATCH_DEBUG=1 for the traceback)")
        rc = 1
    sys.exit(rc if isinstance(rc, int) else 0)


import taskwatch.cli_doctor  # noqa: E402, F401 - `doctor` registers on `cli`
import taskwatch.cli_jobs  # noqa: E402, F401 - `job` registers on `cli`

# The action commands (revoke, retry, purge, worker, audit) register on `cli`.
from taskwatch import cli_actions  # noqa: E402, F401
