"""The view keys act only while the views' own screen is on top (no network)."""

from __future__ import annotations

import asyncio

from textual.command import CommandPalette

from taskwatch.config import Settings
from taskwatch.monitor import Monitor
from taskwatch.ui.app import TaskwatchApp
from taskwatch.ui.screens.help import HelpScreen
from taskwatch.ui.screens.views import ViewsScreen


def offline_app() -> TaskwatchApp:
    settings = Settings(broker_url="redis://offline.invalid:6379/0")
    return TaskwatchApp(settings, monitor=Monitor(settings, events=False, backfill=0), poll=False)


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
