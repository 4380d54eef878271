"""A key's answer is drawn once its handlers ran, not at the screen's next frame slot.

Textual's frame grid is stretched to 1 s here so that waiting for a slot is
unmistakable: a plain screen shows a character typed just after a frame about
a second later, a screen with :class:`PromptFrames` at once. The plain screen
is the control: it shows what the test would see if a Textual upgrade took
away either private member the mixin relies on.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import textual.screen
from textual import events
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Input

from taskwatch.ui.prompt_frames import KeyClock, PromptFrames

PERIOD = 1.0  # seconds between Textual's frame slots in this test


class PlainScreen(Screen[None]):
    def compose(self) -> ComposeResult:
        yield Input(id="box")


class PromptScreen(PromptFrames, PlainScreen):
    pass


class KeysApp(App[None]):
    def __init__(self, screen_type: type[Screen[None]]) -> None:
        super().__init__()
        self.screen_type = screen_type
        self.key_clock = KeyClock()
        self.frames: list[tuple[float, str]] = []  # (when, what the box showed)

    def get_default_screen(self) -> Screen[None]:
        return self.screen_type()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.key_clock.key()
        await super().on_event(event)

    def post_display_hook(self) -> None:  # Textual calls it after every frame it writes
        boxes = self.screen.query("#box")
        if boxes:
            self.frames.append((time.monotonic(), boxes.first(Input).value))


async def _shown(app: KeysApp, value: str, timeout: float = 5.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for at, shown in app.frames:
            if shown == value:
                return at
        await _sleep()
    raise AssertionError(f"no frame showed {value!r}; frames: {app.frames}")


async def _sleep() -> None:
    await asyncio.sleep(0.005)


async def _second_key_to_frame(screen_type: type[Screen[None]]) -> float:
    app = KeysApp(screen_type)
    async with app.run_test(size=(40, 5)) as pilot:
        app.screen.query_one("#box", Input).focus()
        await pilot.press("a")
        await _shown(app, "a")  # a frame has just been drawn: the next slot is a period away
        start = time.monotonic()
        await pilot.press("b")
        return await _shown(app, "ab") - start


@pytest.mark.parametrize("screen_type", [PromptScreen, PlainScreen])
def test_a_key_is_drawn_without_waiting_for_the_frame_slot(monkeypatch: pytest.MonkeyPatch,
                                                            screen_type: type[Screen[None]]) -> None:
    monkeypatch.setattr(textual.screen, "UPDATE_PERIOD", PERIOD)
    waited = asyncio.run(_second_key_to_frame(screen_type))
    if screen_type is PromptScreen:
        assert waited < PERIOD / 3, f"the key's frame waited {waited:.3f} s for its slot"
    else:
        assert waited > PERIOD / 3, f"the control drew at once ({waited:.3f} s): the test shows nothing"


def test_the_textual_members_it_leans_on_are_there() -> None:
    from taskwatch.ui.prompt_frames import SUPPORTED

    assert SUPPORTED, "a Textual upgrade renamed what PromptFrames uses: keys wait for frame slots again"


def test_frames_outside_a_key_window_are_paced() -> None:
    clock = KeyClock()
    assert not clock.answering()
    clock.key()
    assert clock.answering()
    clock.last_key -= 1.0
    assert not clock.answering()
