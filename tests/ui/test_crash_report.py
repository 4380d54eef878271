"""What the TUI leaves on the terminal when it crashes, and says when a password is refused."""

from __future__ import annotations

import asyncio

from rich.console import Console

from taskwatch.ui.widgets.status_bar import StatusBar


def test_a_crash_report_shows_no_locals_and_masks_urls(recorded_app):
    """Textual's own report prints every frame's locals (the settings, URLs with passwords)."""

    async def scenario() -> list:
        app = recorded_app()
        async with app.run_test(size=(80, 24)):
            url = "redis://:Crash/Pw77#x@h/0"  # a local the report must not show
            try:
                raise RuntimeError(f"cannot talk to {url}")
            except RuntimeError:
                app._fatal_error()  # as Textual calls it for an unhandled exception
            return list(app._exit_renderables)

    renderables = asyncio.run(scenario())
    console = Console(width=200, record=True, color_system=None)
    for renderable in renderables:
        console.print(renderable)
    text = console.export_text()
    assert "RuntimeError: cannot talk to redis://:****@h/0" in text
    assert "Crash" not in text and "Pw77" not in text and ":secret@" not in text, text


def test_the_header_names_a_refused_password_not_an_outage(recorded_app):
    async def scenario() -> tuple[str, str]:
        app = recorded_app()
        async with app.run_test(size=(120, 24)) as pilot:
            bar = app.query_one(StatusBar)
            bar.show(app.state, broker_error="broker redis://:****@h/0: authentication failed: WRONGPASS",
                     events_connected=False)
            refused = bar.render().plain
            bar.show(app.state, broker_error="cannot reach broker redis://:****@h/0: Connection refused",
                     events_connected=False)
            down = bar.render().plain
            await pilot.pause()
            return refused, down

    refused, down = asyncio.run(scenario())
    assert "✖ broker authentication failed" in refused and "unreachable" not in refused
    assert "✖ broker unreachable" in down
