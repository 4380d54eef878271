"""The action windows on their own: the confirmation (default No, typed names,
signal choice), the arguments editor (strict JSON only) and worker control's values."""

from __future__ import annotations

import asyncio

import pytest
from textual.app import App

from taskwatch.records import ExactCall
from taskwatch.ui.screens.args_editor import ArgsEditor, parse_call
from taskwatch.ui.screens.confirm import Confirm
from taskwatch.ui.screens.worker_control import WorkerControl, parse_values


class Host(App):
    def __init__(self, screen) -> None:
        super().__init__()
        self.question = screen
        self.answers: list = []

    def on_mount(self) -> None:
        self.push_screen(self.question, callback=self.answers.append)


def answer(screen, *keys: str) -> list:
    async def scenario() -> list:
        app = Host(screen)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            for key in keys:
                await pilot.press(key)
            await pilot.pause()
        return app.answers

    return asyncio.run(scenario())


def test_enter_and_escape_say_no_only_y_says_yes():
    assert answer(Confirm("Revoke 1 task?", ["x"]), "enter") == [False]
    assert answer(Confirm("Revoke 1 task?", ["x"]), "escape") == [False]
    assert answer(Confirm("Revoke 1 task?", ["x"]), "n") == [False]
    assert answer(Confirm("Revoke 1 task?", ["x"]), "y") == [True]


def test_a_typed_confirmation_wants_the_exact_name():
    assert answer(Confirm("Purge?", [], typed="emails"), "y", "enter") == [False]  # y is a letter here
    assert answer(Confirm("Purge?", [], typed="emails"), *"email", "enter") == [False]
    assert answer(Confirm("Purge?", [], typed="emails"), *"emails", "enter") == [True]


def test_the_signal_is_chosen_in_the_confirmation():
    screen = Confirm("Terminate?", [], choices=("SIGTERM", "SIGKILL"))
    assert answer(screen, "right", "y") == [True] and screen.choice == "SIGKILL"
    default = Confirm("Terminate?", [], choices=("SIGTERM", "SIGKILL"))
    assert answer(default, "y") == [True] and default.choice == "SIGTERM"


def test_untrusted_text_in_a_confirmation_stays_text():
    screen = Confirm("Revoke [bold]x[/bold]?", ["[red]\x1b]0;pwned\x07"])
    assert answer(screen, "n") == [False]


def test_the_editor_sends_only_strict_json_of_the_right_shape():
    assert parse_call('{"args": [1, "é", [[[[["deep"]]]]]], "kwargs": {"k": null}}') == ExactCall(
        (1, "é", [[[[["deep"]]]]]), {"k": None})
    for bad, why in (("{'args': (1,)}", "not JSON"), ('{"args": {}}', "list"), ('[1]', "object"),
                     ('{"args": [], "kwargs": []}', "object"), ('{"args": ["cut…', "not JSON")):
        with pytest.raises(ValueError, match=why):
            parse_call(bad)


def test_the_editor_keeps_the_window_open_on_bad_json_and_returns_the_values():
    editor = ArgsEditor("tasks.add", "t1", "('abc…', 3)", "{}")
    assert answer(editor, "ctrl+s", "escape") == [None]  # the repr is not JSON: stays open, then cancel

    async def scenario() -> list:
        editor = ArgsEditor("tasks.add", "t1", "('abc…', 3)", "{}")
        app = Host(editor)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            editor.query_one("TextArea").text = '{"args": ["abcdef", 3], "kwargs": {}}'
            await pilot.press("ctrl+s")
            await pilot.pause()
        return app.answers

    assert asyncio.run(scenario()) == [ExactCall(("abcdef", 3), {})]


def test_worker_control_values():
    assert parse_values(("n",), "2") == {"n": 2}
    assert parse_values(("max", "min"), "8 2") == {"max": 8, "min": 2}
    assert parse_values(("task_name", "rate_limit"), "tasks.add 10/m") == {"task_name": "tasks.add",
                                                                          "rate_limit": "10/m"}
    for names, text in ((("n",), ""), (("n",), "x"), (("n",), "-1"), (("max", "min"), "8")):
        with pytest.raises(ValueError):
            parse_values(names, text)


def test_worker_control_picks_a_command_and_its_values():
    # pool_grow is first: Enter picks it, then its value
    assert answer(WorkerControl("w@h"), "enter", "3", "enter") == [("pool_grow", {"n": 3})]
    # with events off, enable_events comes first and takes no value
    assert answer(WorkerControl("w@h", events_off=True), "enter") == [("enable_events", {})]


def test_revoke_every_task_the_filter_shows_asks_with_the_count():
    from taskwatch.config import Settings
    from taskwatch.monitor import Monitor
    from taskwatch.ui.app import TaskwatchApp
    from tests.waiting import pilot_wait_until

    settings = Settings(broker_url="redis://offline.invalid:6379/0")
    app = TaskwatchApp(settings, monitor=Monitor.from_settings(settings, events=False, backfill=0), poll=False)
    events = [{"type": "task-received", "uuid": f"t{i}", "hostname": "w@h", "timestamp": 1.8e9 + i,
               "name": "shop.invoice" if i % 2 else "shop.mail"} for i in range(6)]

    async def scenario() -> str:
        async with app.run_test(size=(100, 30)) as pilot:
            app.state.apply_events(events)
            await pilot.press("3")
            app.show_task_tab("all")
            app.set_filter("invoice")
            await pilot_wait_until(pilot, lambda: sorted(app.filtered_ids()) == ["t1", "t3", "t5"],
                                   what="the filtered list")
            await pilot.press("colon")
            await pilot.press(*"revoke every")
            await pilot.press("enter")
            await pilot_wait_until(pilot, lambda: isinstance(app.screen, Confirm), what="the question")
            title = app.screen.title_text
            await pilot.press("escape")  # no: nothing is sent (and there is no broker to send to)
            await pilot_wait_until(pilot, lambda: not isinstance(app.screen, Confirm), what="the answer")
            return title

    assert asyncio.run(scenario()) == "Revoke 3 tasks: every task the filter shows (3)?"
