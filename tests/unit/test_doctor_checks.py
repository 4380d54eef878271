"""The doctor's verdicts on plain observations (the integration tests run them on real clusters)."""

from __future__ import annotations

from taskwatch.doctor import (
    FAIL,
    OK,
    SKIPPED,
    WARN,
    EventNotes,
    HostEvents,
    Observed,
    check_clock_drift,
    check_event_buffer,
    check_task_events,
    check_visibility_timeout,
    exit_code,
)
from taskwatch.records import HeldEta, PubsubLimit
from taskwatch.sources.redis_health import parse_pubsub_limit

NOW = 1_800_000_000.0


def listening(**hosts: HostEvents) -> Observed:
    notes = EventNotes(hosts=dict(hosts))
    return Observed("redis://h/0", "redis", listen=5.0, events=notes, pings=tuple(hosts), at=NOW)


def test_a_worker_that_took_tasks_and_sent_only_heartbeats_has_task_events_off():
    obs = listening(w1=HostEvents(heartbeats=2, processed=[(NOW - 4, 10), (NOW - 2, 15)]),
                    w2=HostEvents(heartbeats=2, task_events=30))
    finding = check_task_events(obs)
    assert finding.status == FAIL and finding.data["task_events_off"] == ["w1"]
    assert "taskwatch worker w1 events-on" in (finding.fix or "")


def test_an_idle_worker_is_not_judged_and_a_count_read_in_the_last_second_does_not_count():
    # the second reading came too late for the task's events to have arrived
    obs = listening(w1=HostEvents(heartbeats=2, processed=[(NOW - 4, 10), (NOW - 0.5, 11)]))
    finding = check_task_events(obs)
    assert finding.status == SKIPPED and finding.data["idle"] == ["w1"]


def test_a_worker_heard_nothing_from_over_two_heartbeat_periods_fails():
    obs = listening()
    obs.pings = ("silent@h",)
    assert check_task_events(obs).data["no_events"] == ["silent@h"]


def test_clock_drift_is_measured_from_the_fastest_event_and_warns_past_a_second():
    obs = listening(ahead=HostEvents(skew=-3.2), fine=HostEvents(skew=0.004))
    finding = check_clock_drift(obs)
    assert finding.status == WARN and "ahead 3.2 s ahead" in finding.seen
    assert "fine" not in finding.seen


def test_the_buffer_must_hold_five_seconds_of_the_peak_rate_and_a_short_soft_limit_counts():
    obs = listening()
    assert obs.events is not None
    obs.events.bytes_by_second = {int(NOW) - 1: 100_000, int(NOW): 1_000_000}
    obs.pubsub = PubsubLimit(hard=32 * 1024**2, soft=8 * 1024**2, soft_seconds=60)
    assert check_event_buffer(obs).status == OK  # 32 MB at 1 MB/s: 33 s
    obs.pubsub = PubsubLimit(hard=32 * 1024**2, soft=2 * 1024**2, soft_seconds=2)
    assert check_event_buffer(obs).status == WARN  # cut after 2 s above 2 MB
    obs.pubsub = PubsubLimit(0, 0, 0)
    assert check_event_buffer(obs).status == OK
    obs.pubsub, obs.pubsub_error = None, "Redis at redis://h/0 refused CONFIG GET: NOPERM"
    finding = check_event_buffer(obs)
    assert finding.status == SKIPPED and "refused CONFIG" in finding.seen


def test_the_visibility_timeout_counts_from_delivery_and_comes_from_the_app():
    obs = Observed("redis://h/0", "redis", listen=0, at=NOW,
                   conf={"broker_transport_options": {"visibility_timeout": 600}})
    obs.held = [HeldEta("a", "t", eta=NOW + 100, delivered_at=NOW - 550)]  # 650 s after delivery
    finding = check_visibility_timeout(obs)
    assert finding.status == WARN and finding.data["beyond"] == ["a"]
    obs.held = [HeldEta("b", "t", eta=NOW + 500, delivered_at=NOW)]
    assert check_visibility_timeout(obs).status == OK
    assert check_visibility_timeout(Observed("amqp://h//", "amqp", listen=0)).status == SKIPPED


def test_pubsub_limits_are_read_in_bytes_or_in_redis_units():
    assert parse_pubsub_limit("normal 0 0 0 replica 1 2 3 pubsub 33554432 8388608 60") == \
        PubsubLimit(33554432, 8388608, 60)
    assert parse_pubsub_limit("pubsub 32mb 8mb 60") == PubsubLimit(32 * 1024**2, 8 * 1024**2, 60)
    assert parse_pubsub_limit("normal 0 0 0") is None


def test_exit_code_is_1_for_a_warning_or_a_failure_else_0():
    from taskwatch.doctor import Finding

    assert exit_code([Finding("a", OK, "x"), Finding("b", SKIPPED, "y")]) == 0
    assert exit_code([Finding("a", OK, "x"), Finding("b", WARN, "y", "z")]) == 1
    assert exit_code([Finding("a", FAIL, "x", "z")]) == 1
