"""The queue peek window says what it really does on each broker."""

from __future__ import annotations

import asyncio

import pytest

from taskwatch.config import Settings
from taskwatch.records import SOURCE_AMQP, SOURCE_MANAGEMENT, SOURCE_REDIS
from taskwatch.sources.queues.common import NO_PEEK
from taskwatch.ui.app import TaskwatchApp
from taskwatch.ui.screens.queue_peek import QueuePeek, render_messages
from tests.ui.test_views import screen_text
from tests.waiting import pilot_wait_until


def _title(text) -> str:
    return text.plain.splitlines()[0]


def test_redis_title_names_lrange():
    assert "LRANGE" in _title(render_messages("celery", [], None, SOURCE_REDIS))


@pytest.mark.parametrize("source", [SOURCE_AMQP, SOURCE_MANAGEMENT])
def test_rabbitmq_title_names_no_redis_command(source):
    title = _title(render_messages("celery", [], NO_PEEK, source))
    assert "LRANGE" not in title
    assert "not read" in title and "RabbitMQ" in title


def test_unknown_source_claims_no_command():
    assert "LRANGE" not in _title(render_messages("celery", [], None, None))


def test_peek_on_rabbitmq_is_titled_for_rabbitmq(rabbitmq_url):
    async def scenario() -> None:
        app = TaskwatchApp(Settings(broker_url=rabbitmq_url, refresh_interval=0.5, backfill=0))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("2")
            await pilot_wait_until(pilot, lambda: "celery" in app.state.queues,
                                   what="the celery queue listed by the AMQP probe")
            await pilot.press("slash", *"celery", "enter")
            table = app.query_one("#queues")
            await pilot_wait_until(pilot, lambda: table.selected_key == "celery",
                                   what="the celery queue selected")
            await pilot.press("enter")
            await pilot_wait_until(pilot, lambda: isinstance(app.screen, QueuePeek)
                                   and "peeking is not offered" in screen_text(app, "#peek-body"),
                                   what="the peek window's answer")
            title = screen_text(app, "#peek-body").splitlines()[0]
            assert "LRANGE" not in title and "RabbitMQ" in title

    asyncio.run(scenario())
