"""The views' keys: what each view does with them, from the registry, and only while
the views' own screen is on top (no network)."""

from __future__ import annotations

import asyncio

from textual.binding import Binding
from textual.command import CommandPalette
from textual.widgets import ContentSwitcher

from taskwatch.config import Settings
from taskwatch.monitor import Monitor
from taskwatch.ui.app import TaskwatchApp
from taskwatch.ui.screens.help import HelpScreen
from taskwatch.ui.screens.views import ViewsScreen
from taskwatch.ui.views.registry import VIEW_ACTIONS, VIEWS


def offline_app() -> TaskwatchApp:
    settings = Settings(broker_url="redis://offline.invalid:6379/0")
    return TaskwatchApp(settings, monitor=Monitor.from_settings(settings, events=False, backfill=0), poll=False)


def test_view_keys_wait_while_the_help_or_the_command_palette_covers_the_views():
    async def scenario() -> None:
        app = offline_app()
        async with app.run_test(size=(100, 30)) as pilot:
            assert isinstance(app.screen, ViewsScreen)
            assert app.check_action("nav", ("down",)) is True
            assert app.check_action("revoke", ()) is None  # reserved: shown greyed

            await pilot.press("colon")
            assert isinstance(app.screen, CommandPalette)
            assert app.check_action("nav", ("down",)) is False
            assert app.check_action("revoke", ()) is False
            assert app.check_action("help", ()) is True  # not about the views
            await pilot.press("escape")
            assert isinstance(app.screen, ViewsScreen)

            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            assert app.check_action("open", ()) is False
            await pilot.press("escape")
            assert app.check_action("open", ()) is True

    asyncio.run(scenario())


def test_every_view_is_shown_by_its_number_key_and_moved_by_the_nav_keys():
    async def scenario() -> None:
        app = offline_app()
        async with app.run_test(size=(100, 30)) as pilot:
            for view in VIEWS:
                await pilot.press(view.key)
                assert app.view == view.name
                assert app.query_one("#switcher", ContentSwitcher).current == view.name
                assert app.query_one(view.widget) in app.query_one(f"#{view.name}").walk_children(with_self=True)
                await pilot.press("j", "k", "pagedown", "pageup", "G", "g", "enter")
                assert isinstance(app.screen, ViewsScreen)  # nothing to open in an empty view

    asyncio.run(scenario())


def test_every_key_of_the_views_is_in_the_registry():
    nav = set()
    for binding in TaskwatchApp.BINDINGS:
        assert isinstance(binding, Binding)
        action, _, argument = binding.action.partition("(")
        assert action in VIEW_ACTIONS or action in ("help", "quit"), action
        if action == "nav":
            nav.add(argument.strip("')"))
    assert [b.id for b in TaskwatchApp.BINDINGS[:len(VIEWS)]] == [f"view.{v.name}" for v in VIEWS]
    for view in VIEWS:
        assert set(view.nav) == nav, view.name
    for action in VIEW_ACTIONS:
        assert callable(getattr(TaskwatchApp, f"action_{action}")), action
