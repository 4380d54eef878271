"""The views' state-changing keys: ask, act off the UI thread, say what happened.

Every action here goes the same way:

1. what it targets comes from the visible view (the marked tasks, else the
   selected one; the selected queue, worker, task name or beat entry);
2. a :class:`~taskwatch.ui.screens.confirm.Confirm` names exactly what
   will happen to what, default No (typed name for purge and shutdown);
3. on yes, a thread worker calls the monitor's controller, which refuses
   under ``--read-only`` before anything is sent, and writes the audit line;
4. each worker's answer comes back as an :class:`ActionDone` message and is
   shown as a notification (text, never markup).

Under ``--read-only`` the keys are greyed by ``check_action`` and never get
here; the controller refuses too, so nothing is sent even if one did.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events, work
from textual.message import Message
from textual.widgets import Input

from taskwatch import audit
from taskwatch.engine.entities import LOST, is_scheduler_run
from taskwatch.engine.schedule_book import APP_STORE, ScheduleRow, undecodable
from taskwatch.engine.state import FAILURE, REVOKED
from taskwatch.records import ActionOutcome, ExactCall
from taskwatch.text import clean
from taskwatch.ui.format import relative
from taskwatch.ui.screens.args_editor import ArgsEditor
from taskwatch.ui.screens.confirm import Confirm
from taskwatch.ui.screens.worker_control import WorkerControl
from taskwatch.ui.views.registry import VIEW_ACTIONS

if TYPE_CHECKING:
    from taskwatch.monitor import Monitor

SIGNALS = ("SIGTERM", "SIGKILL", "SIGINT", "SIGQUIT")
#: retry-all windows offered in its confirmation
SINCE = (("all", None), ("last 15 min", 900.0), ("last hour", 3600.0), ("last day", 86400.0))
#: the state-changing actions of the views, for check_action and --read-only
STATE_CHANGING = frozenset({"revoke", "terminate", "retry", "trigger", "purge", "worker_control",
                            "revoke_filtered", "pause", "remove_job"})
#: the windows' actions that change the cluster: a job's detail (t, p, D), a queue's peek (x)
WINDOW_CHANGING = frozenset({"job", "remove"})
# Lost too: as a failed one, it is sent again only after the question, which
# says that a lost task may yet run (a redelivery, a worker that comes back).
RETRYABLE = (FAILURE, REVOKED, LOST)


class ActionDone(Message):
    """An action came back: what was sent and each target's answer."""

    def __init__(self, outcomes: list[ActionOutcome]) -> None:
        super().__init__()
        self.outcomes = outcomes


def _line(value: Any, limit: int = 120) -> str:
    return clean(str(value), limit, single_line=True)


def _names(items: list[str], limit: int = 4) -> str:
    shown = ", ".join(_line(i, 60) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


class ActionKeys:
    """Mixed into the app: ``action_revoke`` and friends. Needs ``monitor``,
    ``settings``, ``view``, ``marked``, ``selected_in(view)`` and ``filtered_ids()``."""

    # -- read-only: a greyed key says why ------------------------------------
    def on_key(self, event: events.Key) -> None:
        """A key that --read-only greys says so when pressed, where it would act
        (Textual ignores a disabled binding's key without a word)."""
        if not self.settings.read_only or isinstance(self.focused, Input):  # type: ignore[attr-defined]
            return  # a key typed into the filter is a character
        active = self.screen.active_bindings.get(event.key)  # type: ignore[attr-defined]
        if active is None or active.enabled:
            return
        action = active.binding.action.split("(", 1)[0]
        rule = VIEW_ACTIONS.get(action)
        views = rule is not None and rule.changes_state and rule.applies_to(self.view)  # type: ignore[attr-defined]
        if views or action in WINDOW_CHANGING:
            self.notify(f"{active.binding.description}: refused, taskwatch is read-only (--read-only)",  # type: ignore[attr-defined]
                        severity="warning", markup=False, timeout=4)

    # -- what the keys act on ----------------------------------------------
    def _task_targets(self) -> list[str]:
        """Celery tasks only: a failed APScheduler run listed among them is not one."""
        marked = [i for i in self.marked if i in self.monitor.state.tasks  # type: ignore[attr-defined]
                  and not is_scheduler_run(i)]
        if marked:
            return marked
        selected = self.selected_in("tasks")  # type: ignore[attr-defined]
        if selected and is_scheduler_run(selected):
            self.notify("A failed APScheduler run: act on its job in Upcoming (5), e.g. t to run it now.",  # type: ignore[attr-defined]
                        markup=False)
            return []
        return [selected] if selected else []

    def _ask(self, title: str, lines: list[str | Text], then: Callable[[Confirm], None], **kwargs: Any) -> None:
        screen = Confirm(title, lines, **kwargs)

        def answered(yes: bool | None) -> None:
            if yes:
                then(screen)

        self.push_screen(screen, callback=answered)  # type: ignore[attr-defined]

    def _task_lines(self, ids: list[str]) -> list[str | Text]:
        state = self.monitor.state  # type: ignore[attr-defined]
        lines: list[str | Text] = []
        with state.lock:
            for task_id in ids[:8]:
                task = state.tasks.get(task_id)
                line = Text()
                line.append(f"{(task.state if task else '?'):<9}", style="bold")
                line.append(f"{_line(task.name if task else '?', 40)}  ")
                line.append(_line(task_id, 40), style="dim")
                if task and task.worker:
                    line.append(f"  on {_line(task.worker, 30)}", style="dim")
                lines.append(line)
        if len(ids) > 8:
            lines.append(f"… and {len(ids) - 8} more")
        return lines

    # -- revoke / terminate --------------------------------------------------
    def action_revoke(self) -> None:
        ids = self._task_targets()
        if ids:
            self._confirm_revoke(ids, terminate=False)

    def action_terminate(self) -> None:
        ids = self._task_targets()
        if ids:
            self._confirm_revoke(ids, terminate=True)

    def action_revoke_filtered(self) -> None:
        ids = [i for i in self.filtered_ids() if not is_scheduler_run(i)]  # type: ignore[attr-defined]
        if ids:
            self._confirm_revoke(ids, terminate=False, why=f"every task the filter shows ({len(ids)})")

    def _confirm_revoke(self, ids: list[str], *, terminate: bool, why: str = "") -> None:
        verb = "Terminate" if terminate else "Revoke"
        lines = self._task_lines(ids)
        lines.append("")
        lines.append(Text(
            "Every live worker is told. A revoke lives in those workers' memory (and their "
            "--statedb): a worker started later will still run a revoked task waiting in a queue "
            "(remove it from the queue's peek window).", style="dim"))
        if terminate:
            lines.append(Text("Running ones are killed with the signal below (prefork pools; "
                              "solo and threads pools answer with an error).", style="yellow"))
        title = f"{verb} {len(ids)} task{'s' if len(ids) != 1 else ''}{': ' + why if why else ''}?"
        self._ask(title, lines,
                  lambda screen: self._run(lambda m: [m.actions().revoke(
                      ids, terminate=terminate, signal=screen.choice or "SIGTERM")]),
                  choices=SIGNALS if terminate else ())

    # -- retry -----------------------------------------------------------------
    def action_retry(self) -> None:
        if self.view == "names":  # type: ignore[attr-defined]
            name = self.selected_in("names")  # type: ignore[attr-defined]
            if name:
                self._confirm_retry_all(name)
            return
        ids = [i for i in self._task_targets() if self._retryable(i)]
        if ids:
            self._find_calls(ids)

    def _retryable(self, task_id: str) -> bool:
        task = self.monitor.state.tasks.get(task_id)  # type: ignore[attr-defined]
        return task is not None and task.state in RETRYABLE and bool(task.name)

    @work(thread=True, exclusive=True, group="action", exit_on_error=False,
          description="exact arguments of the tasks to retry")  # not the repr of every id
    def _find_calls(self, ids: list[str]) -> None:
        """Exact arguments for each (engine, else the result backend): I/O, off the UI thread."""
        monitor: Monitor = self.monitor  # type: ignore[attr-defined]
        found: dict[str, ExactCall | None] = {}
        for task_id in ids:
            try:
                found[task_id] = monitor.exact_call(task_id)
            except Exception:  # noqa: BLE001 - the backend is optional: treat as not known
                found[task_id] = None
        self.call_from_thread(self._confirm_retry, ids, found)  # type: ignore[attr-defined]

    def _confirm_retry(self, ids: list[str], calls: dict[str, ExactCall | None]) -> None:
        inexact = [i for i in ids if calls.get(i) is None]
        if inexact and len(ids) == 1:
            task = self.monitor.state.tasks[ids[0]]  # type: ignore[attr-defined]
            editor = ArgsEditor(task.name or "?", task.uuid, task.args, task.kwargs)

            def edited(call: ExactCall | None) -> None:
                if call is not None:
                    self._confirm_retry(ids, {ids[0]: call})

            self.push_screen(editor, callback=edited)  # type: ignore[attr-defined]
            return
        exact = [i for i in ids if calls.get(i) is not None]
        lines = self._task_lines(exact)
        if len(exact) == 1:
            call = calls[exact[0]]
            assert call is not None
            lines.append(Text("\nwith exactly: " + _line(json.dumps(
                {"args": list(call.args), "kwargs": dict(call.kwargs)}, ensure_ascii=False, default=repr), 600)))
        lost = [i for i in exact if self.monitor.state.tasks[i].state == LOST]  # type: ignore[attr-defined]
        if lost:
            lines.append(Text(f"\nLost, not known to have failed: {_names(lost)}. It may still run: the broker "
                              "hands out again what a worker had not acknowledged (tasks not started; running "
                              "ones under acks_late), and a worker that comes back goes on. It may run twice.",
                              style="yellow"))
        if inexact:
            lines.append(Text(f"\nNot sent (only a cut repr of their arguments is known; retry them one "
                              f"at a time to write them): {_names(inexact)}", style="yellow"))
        if not exact:
            self.notify("Nothing to retry: the arguments are not known exactly.", severity="warning",  # type: ignore[attr-defined]
                        markup=False)
            return
        tasks = self.monitor.state.tasks  # type: ignore[attr-defined]
        plan = [(tasks[i].name, calls[i], tasks[i].queue, i) for i in exact]
        self._ask(f"Send {len(exact)} task{'s' if len(exact) != 1 else ''} again, as "
                  f"{'new tasks' if len(exact) != 1 else 'a new task'}?", lines,
                  lambda _screen: self._run(lambda m: [
                      m.actions().retry(name, call, queue=queue, retry_of=old) for name, call, queue, old in plan]))

    def _confirm_retry_all(self, name: str) -> None:
        state = self.monitor.state  # type: ignore[attr-defined]
        with state.lock:
            failed = [(t.uuid, t.finished or t.state_ts) for t in state.tasks.values()
                      if t.name == name and t.state == FAILURE]
        if not failed:
            self.notify(f"No failed {name} task is known.", markup=False)  # type: ignore[attr-defined]
            return
        now = time.time()
        choices = [f"{label} ({sum(1 for _, ts in failed if seconds is None or ts >= now - seconds)})"
                   for label, seconds in SINCE]

        def go(screen: Confirm) -> None:
            seconds = SINCE[choices.index(screen.choice)][1] if screen.choice in choices else None
            ids = [i for i, ts in failed if seconds is None or ts >= now - seconds]
            if ids:
                self._find_calls(ids)

        self._ask(f"Retry the failed {_line(name, 60)} tasks?",
                  [f"{len(failed)} failed task(s) of this name are known. Choose which, then the next "
                   "question lists them with their exact arguments."], go, choices=choices)

    # -- scheduled jobs: run now, pause / resume, remove -------------------------
    def _selected_schedule(self) -> ScheduleRow | None:
        key = self.selected_in("upcoming")  # type: ignore[attr-defined]
        if not key:
            return None
        return next((r for r in self.monitor.schedules.rows() if r.key == key), None)  # type: ignore[attr-defined]

    def action_trigger(self) -> None:
        row = self._selected_schedule()
        if row is not None:
            self.confirm_job_action("run", row)

    def action_pause(self) -> None:
        row = self._selected_schedule()
        if row is not None:
            self.confirm_job_action("pause", row)

    def action_remove_job(self) -> None:
        row = self._selected_schedule()
        if row is not None:
            self.confirm_job_action("remove", row)

    def job_action_allowed(self, what: str, row: ScheduleRow) -> bool:
        """Whether ``what`` ("run", "pause", "remove") can be done to the job."""
        if self.settings.read_only or undecodable(row.job):  # type: ignore[attr-defined]
            return False
        if row.job.source == "beat":
            return what == "run"
        return True

    def confirm_job_action(self, what: str, row: ScheduleRow) -> None:
        """Ask, then run now / pause or resume / remove the job (its store or its bridge)."""
        job = row.job
        if not self.job_action_allowed(what, row):
            reason = ("it could not be decoded" if undecodable(job) else
                      "taskwatch is read-only" if self.settings.read_only else  # type: ignore[attr-defined]
                      "beat entries can only be run now (their schedule is beat's)")
            self.notify(f"Not possible for {_line(job.name or job.id, 60)}: {reason}.",  # type: ignore[attr-defined]
                        severity="warning", markup=False)
            return
        if job.source == "beat":
            self._confirm_beat_run(row)
            return
        bridged = any(s.bridged for s in self.monitor.schedules.stores() if s.label == job.store)  # type: ignore[attr-defined]
        action = "resume" if what == "pause" and job.paused else what
        verb = {"run": "Run", "pause": "Pause", "resume": "Resume", "remove": "Remove"}[action]
        lines: list[str | Text] = [
            Text(f"job       {_line(job.name or job.id, 80)}  ({_line(job.id, 60)})"),
            Text(f"function  {_line(job.target, 100)}"),
            Text(f"schedule  {_line(job.trigger, 100)}"),
            Text(f"store     {_line(job.store, 100)}"),
            Text(""),
            Text(self._timing(action, row, bridged), style="dim" if bridged else "yellow"),
        ]
        method = {"run": "run_now", "pause": "pause", "resume": "resume", "remove": "remove"}[action]
        self._ask(f"{verb} APScheduler job {_line(job.name or job.id, 50)}?", lines,
                  lambda _s: self._run(lambda m: [getattr(m.schedule_control(job), method)(job.id)]),
                  typed=job.id if action == "remove" else None)

    def _timing(self, action: str, row: ScheduleRow, bridged: bool) -> str:
        """What the scheduler will make of it, and when: honest about outside writes."""
        job = row.job
        if bridged:
            return {
                "run": "Through taskwatch.bridge, inside the scheduler's process: the job runs at once, "
                       "once; its schedule is unchanged.",
                "pause": "Through taskwatch.bridge: the scheduler pauses it at once.",
                "resume": "Through taskwatch.bridge: the scheduler resumes it at once; its next run "
                          "comes from its trigger.",
                "remove": "Through taskwatch.bridge: the scheduler removes it at once, for good.",
            }[action]
        others = [r.job.next_run for r in self.monitor.schedules.rows()  # type: ignore[attr-defined]
                  if r.job.store == job.store and r.job.id != job.id and r.job.next_run is not None
                  and not r.job.paused]
        wake = min(others) if others else None
        when = (f"its next wakeup is at the earliest next run of its jobs ({relative(wake, time.time())})"
                if wake is not None else "nothing else in this store wakes it")
        grace = "no limit" if job.grace is None else f"{job.grace:g} s"
        no_bridge = " Without taskwatch.bridge in the scheduler's process, nothing can wake it sooner."
        return {
            "run": f"Written into the job store: a running scheduler sees it only when it next wakes; "
                   f"{when}. A run later than the job's misfire grace ({grace}) is skipped as missed. "
                   f"An interval trigger counts its next runs from this one.{no_bridge}",
            "pause": "Written into the job store: the scheduler no longer finds the job due, from its "
                     "next wakeup on (a run already started goes on).",
            "resume": f"Written into the job store with its next run from its trigger: a running scheduler "
                      f"sees it when it next wakes; {when}. A run later than its misfire grace ({grace}) "
                      f"is skipped.{no_bridge}",
            "remove": "Deleted from the job store, for good: the job's definition is gone (its code stays). "
                      "Type its id to confirm.",
        }[action]

    def _confirm_beat_run(self, row: ScheduleRow) -> None:
        job = row.job
        entry: dict[str, Any] | None
        if job.store == APP_STORE:
            schedule = self.monitor.sources.conf.get("beat_schedule") or {}  # type: ignore[attr-defined]
            entry = schedule.get(job.name) if isinstance(schedule.get(job.name), dict) else None
        elif job.call is not None or not (job.args.strip("()") or job.kwargs.strip("{}")):
            call = job.call or ExactCall((), {})
            entry = {"task": job.target, "args": list(call.args), "kwargs": dict(call.kwargs),
                     "options": dict(job.options)}
        else:
            entry = None
        if entry is None:
            self.notify(f"{_line(job.name, 60)}: its arguments are not known exactly; run it from beat "  # type: ignore[attr-defined]
                        "or with `celery call`.", severity="warning", markup=False)
            return
        name = job.name
        lines: list[str | Text] = [Text(f"task    {_line(entry.get('task'), 80)}"),
                                   Text(f"args    {_line(entry.get('args') or (), 200)}"),
                                   Text(f"kwargs  {_line(entry.get('kwargs') or {}, 200)}"),
                                   Text("Sent now as beat would send it; beat's own schedule is unchanged.",
                                        style="dim")]
        self._ask(f"Run beat entry {_line(name, 60)} now?", lines,
                  lambda _s: self._run(lambda m: [m.actions().run_entry(name, entry)]))

    # -- queues ------------------------------------------------------------------
    def action_purge(self) -> None:
        queue = self.selected_in("queues")  # type: ignore[attr-defined]
        if not queue:
            return
        depth = self.monitor.state.queues.get(queue)  # type: ignore[attr-defined]
        count = depth.messages if depth is not None and depth.messages is not None else "?"
        self._ask(f"Purge queue {_line(queue, 60)}?",
                  [f"Deletes the {count} message(s) waiting in it, for good. Messages workers already "
                   "hold (prefetched, waiting for an ETA) stay."],
                  lambda _s: self._run(lambda m: [m.actions().purge(queue)]), typed=queue)

    def remove_message(self, queue: str, task_id: str, name: str) -> None:
        """From the queue's peek window: remove one waiting message, exactly."""
        self._ask(f"Remove {_line(name, 60)} {_line(task_id, 40)} from {_line(queue, 40)}?",
                  ["Takes exactly this message out of the queue (Redis LREM): it will never run. "
                   "If a worker took it meanwhile, nothing is removed."],
                  lambda _s: self._run(lambda m: [m.actions().remove_message(queue, task_id)]))

    # -- workers -------------------------------------------------------------------
    def action_worker_control(self) -> None:
        host = self.selected_in("workers")  # type: ignore[attr-defined]
        if not host:
            return
        worker = self.monitor.state.workers.get(host)  # type: ignore[attr-defined]
        events_off = worker is not None and worker.last_heartbeat is None

        def chosen(choice: tuple[str, dict[str, Any]] | None) -> None:
            if choice is None:
                return
            command, arguments = choice
            shown = " ".join(f"{k}={v}" for k, v in arguments.items())
            self._ask(f"{command} {shown} on {_line(host, 60)}?".replace("  ", " "),
                      [f"Sent to {host} only; its answer is shown when it comes."],
                      lambda _s: self._run(lambda m: [m.actions().worker(command, [host], **arguments)]),
                      typed=host if command == "shutdown" else None)

        self.push_screen(WorkerControl(host, events_off=events_off), callback=chosen)  # type: ignore[attr-defined]

    # -- running and reporting ---------------------------------------------------
    @work(thread=True, group="action", exit_on_error=False)
    def _run(self, act: Callable[[Monitor], list[ActionOutcome]]) -> None:
        monitor: Monitor = self.monitor  # type: ignore[attr-defined]
        try:
            outcomes = act(monitor)
        except Exception as exc:  # noqa: BLE001 - refused or broken: one line on screen
            outcomes = [ActionOutcome("action", (), error=_line(exc, 300))]
        for outcome in outcomes:
            if outcome.action == "retry" and outcome.created and outcome.arguments.get("retry_of"):
                monitor.state.link_retry(outcome.arguments["retry_of"], outcome.created[0])
        settings = self.settings  # type: ignore[attr-defined]
        for outcome in outcomes:
            if outcome.arguments or outcome.replies:  # something was sent
                try:
                    audit.record(outcome, broker_url=settings.broker_url, profile=settings.profile, via="tui")
                except OSError as exc:
                    outcomes.append(ActionOutcome("audit", (), error=f"audit log not written: {_line(exc)}"))
                    break
        self.post_message(ActionDone(outcomes))  # type: ignore[attr-defined]

    def show_outcomes(self, outcomes: list[ActionOutcome]) -> None:
        for outcome in outcomes:
            lines = [f"{'ok' if r.ok else 'FAILED'}  {_line(r.target, 40)}: {_line(r.text, 160)}"
                     for r in outcome.replies[:8]]
            if outcome.error:
                lines.insert(0, _line(outcome.error, 300))
            self.notify("\n".join(lines) or "done", title=_line(f"{outcome.action} {_names(list(outcome.targets), 2)}"),  # type: ignore[attr-defined]
                        severity="information" if outcome.ok else "error", markup=False,
                        timeout=8 if outcome.ok else 20)
