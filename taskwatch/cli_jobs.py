"""``taskwatch job ACTION JOB_ID``: APScheduler job control from the command line.

The TUI's ``t`` / ``p`` / ``D`` on a job, for scripts and runbooks: ``pause``,
``resume``, ``run`` (now) and ``remove``, on a job of a ``--jobstore``. As
every action command: it says what it will do and asks (``remove`` wants the
job id typed; without a terminal, ``--yes``), ``--read-only`` refuses before
anything is written, and the outcome is written to the audit log. Through
``taskwatch.bridge`` when one serves the store (at once), else written into
the store (seen when the scheduler next wakes).

Exit status: 0 done, 1 the store or the scheduler reported a failure, 2
refused or bad input (no such job, no job store, the job in several stores).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import click

from taskwatch.cli import _merged, cli, common_options, load_settings
from taskwatch.records import ScheduledJob
from taskwatch.text import clean

ACTIONS = {"pause": "pause", "resume": "resume", "run": "run_now", "remove": "remove"}

# cli_actions imports cli, which imports this module: its helpers are taken
# when the command runs, never at import (whichever module is imported first).


def _find(sources: list[Any], job_id: str) -> tuple[Any, ScheduledJob]:
    from taskwatch.cli_actions import Refused

    found = []
    for source in sources:
        for job in source.jobs():
            if job.id == job_id:
                found.append((source, job))
    shown = clean(job_id, 80, single_line=True)
    if not found:
        raise Refused(f"no job {shown!r} in {', '.join(s.label for s in sources)}")
    if len(found) > 1:
        raise Refused(f"job {shown!r} is in several stores ({', '.join(s.label for s, _ in found)}): "
                      "name one with --jobstore")
    return found[0]


@cli.command("job")
@click.argument("action", type=click.Choice(sorted(ACTIONS)))
@click.argument("job_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask: act at once.")
@click.option("--json", "as_json", is_flag=True, help="Print the audit line as JSON.")
@common_options
@click.pass_context
def job(ctx: click.Context, action: str, job_id: str, yes: bool, as_json: bool, **options: Any) -> None:
    """Pause, resume, run now or remove an APScheduler job of a --jobstore."""
    from taskwatch.cli_actions import Refused, _confirm, _refuse_if_read_only, _report
    from taskwatch.sources.factory import schedule_sources

    settings, app = load_settings(_merged(ctx, **options))
    _refuse_if_read_only(settings, action)
    if not settings.jobstores:
        raise Refused(f"{action}: no job store: pass --jobstore URL (or set TASKWATCH_JOBSTORE)")
    # The job stores only (no app configuration: beat's sources stay out).
    only_stores = replace(settings, beat_schedule=None, beat=None, beat_db=None)
    sources = [build() for build in schedule_sources(only_stores, None, settings.broker_url or "")]
    try:
        source, found = _find(sources, job_id)
        control = source.control()
        via = getattr(control, "via", "store")
        when = ("through taskwatch.bridge, at once" if via == "bridge" else
                "written into the store: a running scheduler sees it when it next wakes"
                + ("" if action in ("pause", "remove") else
                   f", and skips a run later than its misfire grace "
                   f"({'no limit' if found.grace is None else f'{found.grace:g} s'})"))
        name = clean(found.name or found.id, 80, single_line=True)
        _confirm(f"{action.capitalize()} APScheduler job {name!r} ({clean(found.target, 100, single_line=True)}) "
                 f"in {source.label}: {when}?", yes, typed=found.id if action == "remove" else None)
        outcome = getattr(control, ACTIONS[action])(found.id)
    finally:
        for source in sources:
            source.close()
    ctx.exit(_report(outcome, settings, as_json))
