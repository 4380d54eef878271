"""The header line: what it says about the event connection."""

from __future__ import annotations

import asyncio

from taskwatch.ui.widgets.status_bar import StatusBar


def test_header_says_when_events_wait_at_the_broker(recorded_app):
    asyncio.run(_header_scenario(recorded_app()))


async def _header_scenario(app) -> None:
    async with app.run_test(size=(100, 24)) as pilot:
        bar = app.query_one(StatusBar)
        counters = app.state.counters

        def line() -> str:
            bar.show(app.state, broker_error=None, events_connected=True)
            return bar.render().plain

        counters.backlog, counters.backlog_limit = 200_000, 32 * 1024 * 1024
        assert "behind" not in line()  # a little is normal in a burst
        counters.backlog = 12 * 1024 * 1024
        assert "⚠ behind 12/32 MB" in line()
        counters.backlog_limit = None  # CONFIG GET refused
        assert "⚠ behind 12 MB" in line()
        counters.lag = 7.4
        assert "⚠ behind 7 s, 12 MB" in line()
        counters.backlog = 0
        assert "⚠ behind 7 s" in line()
        # Read off the socket and waiting to be applied (the receiver's spool).
        counters.spooled, counters.spool_limit = 40 * 1024 * 1024, 256 * 1024 * 1024
        assert "⚠ behind 7 s, 40/256 MB spooled" in line()
        counters.spooled = 300_000  # a little is normal in a burst
        assert "spooled" not in line()
        counters.lag = 0.3
        assert "behind" not in line()
        app.state.open_gap(1.0, "cut off")  # loss outranks lag
        assert "⚠ events lost" in line() and "behind" not in line()
        await pilot.pause()


def test_a_redraw_while_the_widgets_are_going_does_nothing(recorded_app):
    """At exit the redraw timer can fire after the widgets were removed (seen in the suite)."""

    async def scenario() -> None:
        app = recorded_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await app.query_one(StatusBar).remove()
            app._redraw(force=True)  # raised NoMatches
            await pilot.pause()

    asyncio.run(scenario())
