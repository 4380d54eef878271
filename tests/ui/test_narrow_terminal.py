"""At 60x20 nothing on screen covers anything else."""

from __future__ import annotations

import asyncio

from taskwatch.ui.widgets.footer import QuietFooter
from tests.waiting import pilot_wait_until


def _palette_key(footer):
    return next(w for w in footer.children if w.has_class("-command-palette"))


def _overlaps(footer) -> bool:
    palette = _palette_key(footer)
    if not palette.display:
        return False
    keys = [w for w in footer.children if w is not palette]
    return any(w.region.overlaps(palette.region) for w in keys)


def test_footer_keys_never_overlap_the_palette_key(recorded_app):
    app = recorded_app()

    async def scenario() -> None:
        async with app.run_test(size=(60, 20)) as pilot:
            footer = app.query_one(QuietFooter)
            await pilot_wait_until(pilot, lambda: footer.children and not _overlaps(footer),
                                   what="the footer's keys apart from the palette key", timeout=10)
            await pilot.resize_terminal(120, 30)
            await pilot_wait_until(pilot, lambda: _palette_key(footer).display,
                                   what="the palette key back where there is room", timeout=10)
            assert not _overlaps(footer)

    asyncio.run(scenario())
