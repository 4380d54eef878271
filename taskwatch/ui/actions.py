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
from textual import work
from textual.message import Message

from taskwatch import audit
from taskwatch.engine.state import FAILURE, REVOKED
from taskwatch.records import ActionOutcome, ExactCall
from taskwatch.text import clean
from taskwatch.ui.screens.args_editor import ArgsEditor
from taskwatch.ui.screens.confirm import Confirm
from taskwatch.ui.screens.worker_control import WorkerControl

if TYPE_CHECKING:
    from taskwatch.monitor import Monitor

SIGNALS = ("SIGTERM", "SIGKILL", "SIGINT", "SIGQUIT")
#: retry-all windows offered in its confirmation
SINCE = (("all", None), ("last 15 min", 900.0), ("last hour", 3600.0), ("last day", 86400.0))
#: the state-changing actions of the views, for check_action and --read-only
STATE_CHANGING = frozenset({"revoke", "terminate", "retry", "trigger", "purge", "worker_control",
                            "revoke_filtered"})
RETRYABLE = (FAILURE, REVOKED)


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

    # -- what the keys act on ----------------------------------------------
    def _task_targets(self) -> list[str]:
        marked = [i for i in self.marked if i in self.monitor.state.tasks]  # type: ignore[attr-defined]
        if marked:
            return marked
        selected = self.selected_in("tasks")  # type: ignore[attr-defined]
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
        ids = self.filtered_ids()  # type: ignore[attr-defined]
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

    @work(thread=True, exclusive=True, group="action", exit_on_error=False)
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

    # -- beat entry: run now ---------------------------------------------------
    def action_trigger(self) -> None:
        key = self.selected_in("upcoming")  # type: ignore[attr-defined]
        if not key or not key.startswith("beat:"):
            return
        name = key.split(":", 1)[1]
        schedule = self.monitor.sources.conf.get("beat_schedule") or {}  # type: ignore[attr-defined]
        entry = schedule.get(name)
        if not isinstance(entry, dict):
            return
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
