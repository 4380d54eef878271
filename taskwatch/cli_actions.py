"""Actions from the command line, for scripts and runbooks.

``revoke``, ``retry``, ``purge``, ``worker`` and ``audit``. Each
state-changing command says exactly what it will do and asks first: on a
terminal it waits for a yes (default no; ``purge`` wants the queue's name
typed), without one it refuses unless ``--yes`` is given. ``--read-only``
refuses before anything is sent. Every action sent is written to the audit
log (:mod:`taskwatch.audit`), as the TUI's are.

Exit status: 0 when every target was acted on, 1 when a worker or the broker
reported a failure, 2 for refusals and usage errors.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from taskwatch import audit
from taskwatch.cli import _merged, cli, common_options, load_settings
from taskwatch.config import ConfigError, Settings
from taskwatch.records import ActionOutcome, StoredResult
from taskwatch.text import clean

EXIT_FAILED = 1

#: Short names for worker commands, as people say them.
WORKER_ALIASES = {
    "grow": "pool_grow", "shrink": "pool_shrink", "restart": "pool_restart",
    "events-on": "enable_events", "events-off": "disable_events",
    "add-consumer": "add_consumer", "cancel-consumer": "cancel_consumer",
    "rate-limit": "rate_limit", "time-limit": "time_limit",
}


class Refused(ConfigError):
    """Not done, and nothing sent: exit 2 with one line."""


# -- shared ------------------------------------------------------------------

def _controller(settings: Settings, app: Any):
    from taskwatch.sources.control import Controller

    return Controller(settings.broker_url, app, read_only=bool(settings.read_only),
                      timeout=settings.inspect_timeout)


def _refuse_if_read_only(settings: Settings, what: str) -> None:
    if settings.read_only:
        raise Refused(f"{what}: refused, taskwatch is read-only (--read-only); nothing was sent")


def _confirm(question: str, yes: bool, *, typed: str | None = None) -> None:
    """Go ahead only on ``--yes`` or a yes from the terminal (``typed``: that text typed)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise Refused(f"{question.rstrip('?')}: asks for confirmation and there is no terminal; pass --yes")
    if typed is not None:
        answer = click.prompt(f"{question}\nType {typed!r} to confirm", default="", show_default=False)
        if answer != typed:
            raise Refused("not confirmed: nothing was sent")
        return
    if not click.confirm(question, default=False):
        raise Refused("not confirmed: nothing was sent")


def _report(outcome: ActionOutcome, settings: Settings, as_json: bool) -> int:
    line = audit.record(outcome, broker_url=settings.broker_url, profile=settings.profile, via="cli")
    if as_json:
        click.echo(json.dumps(line, ensure_ascii=False))
    else:
        if outcome.error:
            click.echo(f"{outcome.action}: {outcome.error}", err=True)
        for reply in outcome.replies:
            click.echo(f"{'ok    ' if reply.ok else 'FAILED'}  {reply.target}: {reply.text}")
    return 0 if outcome.ok else EXIT_FAILED


def _short(ids: list[str], limit: int = 5) -> str:
    shown = ", ".join(clean(i, 60, single_line=True) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


_json_option = click.option("--json", "as_json", is_flag=True, help="Print the audit line(s) as JSON.")
_yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask: act at once.")


# -- revoke --------------------------------------------------------------------

@cli.command()
@click.argument("ids", nargs=-1, required=True)
@click.option("--terminate", is_flag=True, help="Also kill the task if it is running (prefork pools).")
@click.option("--signal", "signal_name", default="SIGTERM", show_default=True, metavar="SIG",
              help="Signal for --terminate.")
@_yes_option
@_json_option
@common_options
@click.pass_context
def revoke(ctx: click.Context, ids: tuple[str, ...], terminate: bool, signal_name: str, yes: bool,
           as_json: bool, **options: Any) -> None:
    """Revoke tasks by id on every live worker (and terminate them with --terminate).

    A revoke lives in the memory of the workers that hear it (and their
    --statedb file): a worker started later runs a revoked task still
    waiting in a queue.
    """
    from taskwatch.sources.control import SIGNALS

    settings, app = load_settings(_merged(ctx, **options))
    verb = "terminate" if terminate else "revoke"
    _refuse_if_read_only(settings, verb)
    name = signal_name.upper() if signal_name.upper().startswith("SIG") else f"SIG{signal_name.upper()}"
    if terminate and name not in SIGNALS:
        raise Refused(f"unknown signal {signal_name!r} (one of {', '.join(SIGNALS)})")
    how = f" and kill it with {name} if running" if terminate else ""
    _confirm(f"Revoke {len(ids)} task(s){how} on every live worker: {_short(list(ids))}?", yes)
    controller = _controller(settings, app)
    try:
        outcome = controller.revoke(list(ids), terminate=terminate, signal=name)
    finally:
        controller.close()
    ctx.exit(_report(outcome, settings, as_json))


# -- retry ---------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``90s``, ``15m``, ``2h``, ``1d`` ago, or an ISO 8601 time (UTC unless it says)."""
    now = now or datetime.now(UTC)
    match = _DURATION.fullmatch(text.strip().lower())
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Refused(f"--since {clean(text, 40, single_line=True)!r}: give a duration (30m, 2h, 1d) "
                      "or an ISO time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _backend(settings: Settings):
    if not settings.result_backend:
        raise Refused("retry needs the tasks' exact arguments: pass --result-backend (or -A) "
                      "for a result backend with result_extended")
    from taskwatch.sources.results import result_backend

    return result_backend(settings.result_backend)


def _retryable(rows: list[StoredResult]) -> tuple[list[StoredResult], list[str]]:
    good, refused = [], []
    for row in rows:
        if row.call is None or not row.name:
            refused.append(row.task_id)
        else:
            good.append(row)
    return good, refused


@cli.command()
@click.argument("ids", nargs=-1)
@click.option("--failed", "failed_name", metavar="NAME", help="Retry every failed task of this task name.")
@click.option("--since", "since", metavar="WHEN", help="With --failed: only failures since (30m, 2h, ISO time).")
@_yes_option
@_json_option
@common_options
@click.pass_context
def retry(ctx: click.Context, ids: tuple[str, ...], failed_name: str | None, since: str | None,
          yes: bool, as_json: bool, **options: Any) -> None:
    """Send failed tasks again, with exactly their arguments, as new tasks.

    Arguments come from the result backend (Celery's result_extended): a
    task whose arguments are known only as a truncated repr is not sent.
    """
    if bool(ids) == bool(failed_name):
        raise click.UsageError("give task ids, or --failed NAME")
    if since and not failed_name:
        raise click.UsageError("--since goes with --failed")
    settings, app = load_settings(_merged(ctx, **options))
    _refuse_if_read_only(settings, "retry")
    backend = _backend(settings)
    try:
        if ids:
            found = backend.get(list(ids))
            missing = [i for i in ids if i not in found]
            if missing:
                raise Refused(f"not in the result backend: {_short(missing)}; nothing was sent")
            rows = [found[i] for i in ids]
        else:
            cutoff = parse_since(since).timestamp() if since else None
            rows = [r for r in backend.recent(100_000, states={"FAILURE"})
                    if r.name == failed_name and (cutoff is None or (r.date_done or 0) >= cutoff)]
            if not rows:
                raise Refused(f"no failed {clean(failed_name, 200, single_line=True)} task in the result "
                              "backend" + (f" since {since}" if since else ""))
    finally:
        backend.close()
    good, refused = _retryable(rows)
    if refused:
        raise Refused(f"arguments of {_short(refused)} are not known exactly (the result backend has "
                      "no args: enable result_extended); nothing was sent")
    names = sorted({r.name for r in good})
    _confirm(f"Send {len(good)} task(s) again ({', '.join(names)}) with their exact arguments, "
             f"as new tasks: {_short([r.task_id for r in good])}?", yes)
    controller = _controller(settings, app)
    code = 0
    try:
        for row in good:
            assert row.call is not None
            outcome = controller.retry(row.name, row.call, queue=row.queue or None, retry_of=row.task_id)
            code = max(code, _report(outcome, settings, as_json))
    finally:
        controller.close()
    ctx.exit(code)


# -- purge ---------------------------------------------------------------------

@cli.command()
@click.argument("queue")
@_yes_option
@_json_option
@common_options
@click.pass_context
def purge(ctx: click.Context, queue: str, yes: bool, as_json: bool, **options: Any) -> None:
    """Delete every message waiting in QUEUE (messages workers already hold stay)."""
    settings, app = load_settings(_merged(ctx, **options))
    _refuse_if_read_only(settings, "purge")
    _confirm(f"Delete every message waiting in queue {queue!r}? This cannot be undone.", yes, typed=queue)
    controller = _controller(settings, app)
    try:
        outcome = controller.purge(queue)
    finally:
        controller.close()
    ctx.exit(_report(outcome, settings, as_json))


@cli.command()
@click.argument("queue")
@click.argument("task_id")
@_yes_option
@_json_option
@common_options
@click.pass_context
def remove(ctx: click.Context, queue: str, task_id: str, yes: bool, as_json: bool, **options: Any) -> None:
    """Remove one waiting message (by its task id) from QUEUE: Redis brokers only."""
    settings, app = load_settings(_merged(ctx, **options))
    _refuse_if_read_only(settings, "remove")
    _confirm(f"Remove the message of task {task_id} from queue {queue!r}? It will never run.", yes)
    controller = _controller(settings, app)
    try:
        outcome = controller.remove_message(queue, task_id)
    finally:
        controller.close()
    ctx.exit(_report(outcome, settings, as_json))


@cli.command("run")
@click.argument("entry")
@_yes_option
@_json_option
@common_options
@click.pass_context
def run_entry(ctx: click.Context, entry: str, yes: bool, as_json: bool, **options: Any) -> None:
    """Run a Celery beat entry of the -A app's beat_schedule now, as beat would."""
    settings, app = load_settings(_merged(ctx, **options))
    _refuse_if_read_only(settings, "run")
    schedule = (app.conf.get("beat_schedule") if app is not None else None) or {}
    if entry not in schedule or not isinstance(schedule[entry], dict):
        known = ", ".join(sorted(map(str, schedule))) or "none (pass -A APP)"
        raise Refused(f"no beat entry {clean(entry, 80, single_line=True)!r} (entries: {clean(known, 300)})")
    task = schedule[entry].get("task", "?")
    _confirm(f"Run beat entry {entry!r} ({task}) now?", yes)
    controller = _controller(settings, app)
    try:
        outcome = controller.run_entry(entry, schedule[entry])
    finally:
        controller.close()
    ctx.exit(_report(outcome, settings, as_json))


# -- worker control ------------------------------------------------------------

_NUMBERS = {"n", "max", "min", "soft", "hard"}


@cli.command()
@click.argument("host")
@click.argument("command")
@click.argument("values", nargs=-1)
@_yes_option
@_json_option
@common_options
@click.pass_context
def worker(ctx: click.Context, host: str, command: str, values: tuple[str, ...], yes: bool,
           as_json: bool, **options: Any) -> None:
    """Control a worker: grow N, shrink N, autoscale MAX MIN, rate-limit TASK RATE,
    time-limit TASK SOFT HARD, add-consumer QUEUE, cancel-consumer QUEUE,
    events-on, events-off, restart, shutdown (Celery's own names work too).
    HOST may be a comma-separated list."""
    from taskwatch.sources.control import WORKER_COMMANDS

    name = WORKER_ALIASES.get(command, command)
    if name not in WORKER_COMMANDS:
        raise click.UsageError(f"unknown worker command {command!r}")
    wanted = WORKER_COMMANDS[name]
    if len(values) != len(wanted):
        raise click.UsageError(f"{command} takes {' '.join(w.upper() for w in wanted) or 'nothing'}")
    arguments: dict[str, Any] = {}
    for key, value in zip(wanted, values, strict=True):
        if key in _NUMBERS:
            try:
                number = float(value)
            except ValueError:
                raise click.UsageError(f"{key.upper()} must be a number, not {value!r}") from None
            if not 0 <= number < 1e9:
                raise click.UsageError(f"{key.upper()} must be between 0 and 1e9")
            arguments[key] = int(number) if key in ("n", "max", "min") else number
        else:
            arguments[key] = value
    hosts = [h for h in host.split(",") if h]
    settings, app = load_settings(_merged(ctx, **options))
    _refuse_if_read_only(settings, f"worker {command}")
    shown = " ".join(values)
    question = f"{name}{' ' + shown if shown else ''} on {', '.join(hosts)}?"
    _confirm(question, yes, typed=hosts[0] if name == "shutdown" else None)
    controller = _controller(settings, app)
    try:
        outcome = controller.worker(name, hosts, **arguments)
    finally:
        controller.close()
    ctx.exit(_report(outcome, settings, as_json))


# -- the audit log -------------------------------------------------------------

@cli.command("audit")
@click.option("--since", "since", metavar="WHEN", help="Only actions since (30m, 2h, 1d, ISO time).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, as stored.")
def show_audit(since: str | None, as_json: bool) -> None:
    """Print the actions taskwatch took (from the TUI and the CLI), oldest first."""
    cutoff = parse_since(since) if since else None
    lines = list(audit.read(cutoff))
    if as_json:
        for line in lines:
            click.echo(json.dumps(line, ensure_ascii=False))
        return
    if not lines:
        click.echo(f"no actions recorded{' since ' + since if since else ''} ({audit.log_path()})")
        return
    for line in lines:
        text = _audit_text(line)
        click.echo(text)


def _audit_text(line: dict[str, Any]) -> str:
    cell: Callable[[Any, int], str] = lambda v, n: clean(str(v), n, single_line=True)  # noqa: E731
    targets = line.get("targets") or []
    head = (f"{cell(line.get('time', '?'), 30)}  {cell(line.get('user', '?'), 30)}@{cell(line.get('host', '?'), 40)}"
            f"  {cell(line.get('action', '?'), 40)} {cell(', '.join(map(str, targets)), 120)}"
            f"  -> {cell(line.get('outcome', '?'), 10)}")
    details = [f"    {cell(r.get('target'), 80)}: {cell(r.get('text'), 200)}"
               for r in line.get("replies") or [] if isinstance(r, dict)]
    if line.get("error"):
        details.append(f"    error: {cell(line['error'], 300)}")
    return "\n".join([head, *details])


