"""Bad input: one line on stderr, exit 2, no traceback. Real subprocesses."""

import subprocess
import sys

import pytest


def free_port_closed() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(*args: str, cwd=None, env_extra=None) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "TASKWATCH_"))}
    env["TASKWATCH_CONFIG"] = os.devnull  # ignore the user's config file
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "taskwatch", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
    )


def assert_one_line_error(result, *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("taskwatch: ")
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_version():
    result = run("--version")
    assert result.returncode == 0
    from taskwatch import __version__

    assert __version__ in result.stdout


@pytest.mark.parametrize("args", [("--bogus",), ("snapshot", "--bogus"), ("nosuchcommand",)])
def test_unknown_flags_and_commands(args):
    assert_one_line_error(run(*args))


def test_bad_broker_urls():
    assert_one_line_error(run("snapshot", "-b", "foo://x"), "No such transport: foo")
    assert_one_line_error(run("snapshot", "-b", "redis://h:port/0"), "bad broker URL")
    assert_one_line_error(run("snapshot", "-b", "localhost"), "bad broker URL")


def test_unreachable_broker_masks_the_password():
    port = free_port_closed()
    result = run("snapshot", "-b", f"redis://:hunter2@127.0.0.1:{port}/0")
    assert_one_line_error(result, "cannot reach broker", f"redis://:****@127.0.0.1:{port}/0")
    assert "hunter2" not in result.stderr


def test_unreachable_broker_also_stops_the_tui():
    port = free_port_closed()
    assert_one_line_error(
        run("-b", f"amqp://guest:guest@127.0.0.1:{port}//"), "cannot reach broker"
    )


def test_no_broker_configured():
    assert_one_line_error(run("snapshot"), "no broker")


def test_missing_app_module(tmp_path):
    assert_one_line_error(
        run("snapshot", "-A", "nosuchmodule_xyz", cwd=tmp_path),
        "No module named 'nosuchmodule_xyz'",
    )


def test_app_module_that_raises(tmp_path):
    (tmp_path / "broken.py").write_text("raise RuntimeError('settings missing')\n")
    assert_one_line_error(
        run("snapshot", "-A", "broken", cwd=tmp_path), "RuntimeError: settings missing"
    )


def test_app_attribute_that_is_not_an_app(tmp_path):
    (tmp_path / "notapp.py").write_text("app = 42\n")
    assert_one_line_error(run("snapshot", "-A", "notapp:app", cwd=tmp_path), "not a Celery app")


def test_bad_config_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("broker_url = \n")
    assert_one_line_error(run("snapshot", "--config", str(path)), "invalid TOML")


def test_config_command_shows_origins_masked(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[profiles.prod]\nbroker_url = "redis://:pw@prod/0"\n')
    result = run(
        "config",
        "--config",
        str(path),
        "--profile",
        "prod",
        env_extra={"CELERY_RESULT_BACKEND": "redis://:pw2@r/1"},
    )
    assert result.returncode == 0, result.stderr
    assert "redis://:****@prod/0" in result.stdout and "pw" not in result.stdout.replace("****", "")
    assert "env:CELERY_RESULT_BACKEND" in result.stdout


def test_unreadable_config_files(tmp_path):
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'read_only = "\xe9"\n')
    assert_one_line_error(run("config", "--config", str(latin1)), "not UTF-8")
    assert_one_line_error(run("config", "--config", "~nosuchuser-taskwatch/x.toml"), "~nosuchuser-taskwatch")


UNREACHABLE = "redis://127.0.0.1:1/0"  # never asked: numbers and URLs are checked first


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("--listen", "inf"), ("invalid listen", "'inf'")),
        (("--listen", "nan"), ("invalid listen", "'nan'")),
        (("--listen", "-1"), ("invalid listen",)),
        (("--inspect-timeout", "inf"), ("invalid inspect_timeout", "at most 300")),
        (("--inspect-timeout", "nan"), ("invalid inspect_timeout",)),
        (("--inspect-timeout", "soon"), ("invalid inspect_timeout", "'soon'")),
        (("--max-tasks", "-1"), ("invalid max_tasks", "from 1 to")),
        (("--max-tasks", "0"), ("invalid max_tasks", "from 1 to")),
        (("--backfill", "1e3"), ("invalid backfill", "whole number from 0 to")),
        (("--result-backend", "redis://127.0.0.1:1/x"), ("bad result backend URL", "not 'x'")),
    ],
)
def test_numbers_and_urls_that_do_not_fit_are_refused_before_connecting(args, needles):
    result = run("snapshot", "-b", UNREACHABLE, *args)
    assert_one_line_error(result, *needles)
    assert "broker" not in result.stderr.replace("result backend", "")


def test_one_rule_per_number_wherever_it_comes_from(tmp_path):
    """The command line, the environment and the config file give the same message."""
    path = tmp_path / "c.toml"
    path.write_text("max_tasks = 0\n")
    messages = [
        run("snapshot", "-b", UNREACHABLE, "--max-tasks", "0").stderr,
        run("snapshot", "-b", UNREACHABLE, env_extra={"TASKWATCH_MAX_TASKS": "0"}).stderr,
        run("snapshot", "-b", UNREACHABLE, "--config", str(path)).stderr,
    ]
    # The value is shown as given: '0' from text, 0 from the TOML number.
    reasons = {m.split("invalid max_tasks: ", 1)[1].split(", got")[0] for m in messages}
    assert reasons == {"expected a whole number from 1 to 10000000"}, messages


def test_a_huge_url_gives_a_short_line_that_keeps_the_reason():
    result = run("snapshot", "-b", "redis://" + "a" * 100_000 + "/0")
    assert_one_line_error(result, "bad broker URL")
    assert len(result.stderr) < 400
    assert result.stderr.rstrip().endswith(")") or "label too long" in result.stderr


@pytest.mark.parametrize("args, needles", [
    (("--jobstore", "ftp://:s3cret@h/x"), ("bad job store URL", "ftp://", "****")),
    (("--jobstore", "redis://:s3cret@h/x"), ("bad job store URL", "****")),
    (("--jobstore", "sqlite://"), ("in-memory store cannot be read",)),
    (("--beat", "celerybeat"), ("--beat", "redbeat")),
    (("--beat-db", "mysql://root:s3cret@db/beat"), ("****",)),
])
def test_a_schedule_source_that_cannot_work_is_one_line_before_anything_starts(args, needles):
    result = run("snapshot", "-b", f"redis://127.0.0.1:{free_port_closed()}/0", *args)
    assert_one_line_error(result, *needles)
    assert "s3cret" not in result.stderr
