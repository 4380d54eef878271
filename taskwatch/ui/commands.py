"""``:`` — the command palette's commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.command import Hit, Hits, Provider

from taskwatch.engine.query import TAB_LABELS, TABS
from taskwatch.ui.views.registry import VIEWS

if TYPE_CHECKING:
    from taskwatch.ui.app import TaskwatchApp


class TaskwatchCommands(Provider):
    """``:`` — the command palette: views, filter, refresh, revoke what the filter shows."""

    async def search(self, query: str) -> Hits:
        app = cast("TaskwatchApp", self.app)
        matcher = self.matcher(query)
        commands = [(f"Go to {v.label}", lambda v=v: app.action_view(v.name), f"view {v.name}") for v in VIEWS]
        commands += [(f"Tasks: {TAB_LABELS[t]}", lambda t=t: app.show_task_tab(t), f"tasks tab {t}") for t in TABS]
        commands += [
            ("Filter…", app.action_filter, "substring filter on the current view"),
            ("Refresh now", app.action_refresh, "ask workers and broker again"),
            ("Help: keys", app.action_help, "every key"),
            ("Quit", app.action_quit, "leave taskwatch"),
        ]
        if app.view == "tasks" and not app.settings.read_only:
            commands.append(("Revoke every task the filter shows", app.action_revoke_filtered,
                             "the tasks this tab and filter list now; asks first, with the count"))
        for title, callback, help_text in commands:
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
