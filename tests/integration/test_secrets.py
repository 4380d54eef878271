"""No password reaches any output, whatever characters it holds (issue 14, item 7).

A real Redis with ``requirepass`` set to a password holding every URL
delimiter; taskwatch run on it through every URL kind (broker, result
backend, job store, bridge, beat database, RabbitMQ API) and every output
(``snapshot --json``, ``config``, an action refused under ``--read-only``,
one sent, the audit log, bad-URL errors, wrong-password errors, the TUI's
screen in tmux and what it leaves on the terminal). Every captured byte is
searched for the password, its percent-encoded form and each of its pieces
longer than 3 characters between the special characters.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from taskwatch.demo.redis_server import RedisServer
from tests.cluster import REPO_ROOT, service_reachable
from tests.waiting import wait_until

#: Every delimiter a URL parser may stop at, unencoded; pieces no ordinary output holds.
PASSWORD = "Hq7x@Zr9w/Kp2m#Vt5n?Bc3j:Ld8f%Zs4g;Wy6e"
#: The rotated-to (or mistyped) password: refused, and just as secret.
WRONG = "Qa1z@Xe4r/Tb6y#Un8i?Oc2p:Wd5s%Zf7g;Rh9j"
SPECIAL = "@/#?:%;"
PG = ("127.0.0.1", 5432)
AMQP = ("127.0.0.1", 5672)
API = ("127.0.0.1", 15672)


def secret_forms(secret: str) -> set[str]:
    """The password, percent-encoded, and each piece of it longer than 3 characters."""
    pieces = {p for p in re.split(f"[{re.escape(SPECIAL)}]", secret) if len(p) > 3}
    return {secret, quote(secret, safe=""), *pieces}


FORMS = secret_forms(PASSWORD) | secret_forms(WRONG)


def leaks(text: str) -> list[str]:
    return sorted(form for form in FORMS if form in text)


def enc(secret: str) -> str:
    return quote(secret, safe="")


class Outputs:
    """Everything a run printed, to be searched at the end."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, what: str, text: str) -> str:
        self.texts.append((what, text))
        return text

    def assert_no_leak(self) -> None:
        found = [(what, leaks(text), text[:400]) for what, text in self.texts if leaks(text)]
        assert not found, found


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "TASKWATCH_"))}
    env["TASKWATCH_CONFIG"] = os.devnull
    env["TASKWATCH_AUDIT_LOG"] = str(tmp_path / "audit.jsonl")
    return env


@pytest.fixture
def locked_redis():
    with RedisServer(password=PASSWORD) as server:
        yield server


def redis_url(server: RedisServer, secret: str, db: int, *, raw: bool = False) -> str:
    return f"redis://:{secret if raw else enc(secret)}@127.0.0.1:{server.port}/{db}"


def pg_url(secret: str, *, raw: bool = False) -> str:
    return f"postgresql://postgres:{secret if raw else enc(secret)}@127.0.0.1:5432/test"


def api_url(secret: str, *, raw: bool = False) -> str:
    return f"http://guest:{secret if raw else enc(secret)}@127.0.0.1:15672"


def test_no_command_line_output_holds_the_password(locked_redis, tmp_path):
    outputs = Outputs()
    env = env_for(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "taskwatch", *args], capture_output=True,
                                text=True, timeout=120, env=env, cwd=tmp_path)
        outputs.add(f"stdout of {args[:2]}", result.stdout)
        outputs.add(f"stderr of {args[:2]}", result.stderr)
        return result

    good = {db: redis_url(locked_redis, PASSWORD, db) for db in range(4)}
    wrong = {db: redis_url(locked_redis, WRONG, db) for db in range(4)}
    client = redis.Redis(host="127.0.0.1", port=locked_redis.port, password=PASSWORD)
    client.lpush("celery", json.dumps({"headers": {"task": "t", "id": "1"}, "body": ""}))
    with_pg = service_reachable(*PG)

    # Every URL kind with the right password: a document, every URL masked.
    beat_db = ("--beat-db", pg_url(PASSWORD)) if with_pg else ()
    result = run("snapshot", "--json", "-b", good[0], "--result-backend", good[1],
                 "--jobstore", good[2], "--bridge", good[3], *beat_db)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["broker"] == f"redis://:****@127.0.0.1:{locked_redis.port}/0"
    assert {q["name"]: q["messages"] for q in document["queues"]}.get("celery") == 1

    # `config` shows every kind masked, written raw or encoded.
    for shown in (good, {db: redis_url(locked_redis, PASSWORD, db, raw=True) for db in range(4)}):
        result = run("config", "-b", shown[0], "--result-backend", shown[1], "--jobstore", shown[2],
                     "--bridge", shown[3], "--beat-db", pg_url(PASSWORD, raw=shown is not good),
                     "--rabbitmq-api", api_url(PASSWORD, raw=shown is not good))
        assert result.returncode == 0, result.stderr
        assert result.stdout.count(":****@") == 6, result.stdout

    # Unencoded, each kind is refused before anything connects, saying what to do.
    raw = {
        "-b": redis_url(locked_redis, PASSWORD, 0, raw=True),
        "--result-backend": redis_url(locked_redis, PASSWORD, 1, raw=True),
        "--jobstore": redis_url(locked_redis, PASSWORD, 2, raw=True),
        "--bridge": redis_url(locked_redis, PASSWORD, 3, raw=True),
        "--beat-db": pg_url(PASSWORD, raw=True),
        "--rabbitmq-api": api_url(PASSWORD, raw=True),
    }
    for option, url in raw.items():
        base = () if option == "-b" else ("-b", good[0])
        result = run("snapshot", *base, option, url)
        assert result.returncode == 2, (option, result.stderr)
        assert "percent-encode" in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr

    # A wrong (rotated) password says so, for the broker and for each reader.
    result = run("snapshot", "-b", wrong[0])
    assert result.returncode == 2
    assert "authentication failed" in result.stderr and "cannot reach" not in result.stderr, result.stderr
    result = run("snapshot", "--json", "-b", good[0], "--result-backend", wrong[1], "--jobstore", wrong[2])
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "authentication failed" in line]
    assert any("result backend" in line for line in warnings), result.stderr
    assert any("job store" in line for line in warnings), result.stderr

    # An action refused under --read-only, then one sent: the audit log holds it, masked.
    result = run("purge", "celery", "--yes", "--read-only", "-b", good[0])
    assert result.returncode != 0 and "read-only" in result.stderr, result.stderr
    assert client.llen("celery") == 1
    result = run("purge", "celery", "--yes", "-b", good[0])
    assert result.returncode == 0, result.stderr
    assert client.llen("celery") == 0
    audit = (tmp_path / "audit.jsonl").read_text()
    outputs.add("audit log", audit)
    assert f"redis://:****@127.0.0.1:{locked_redis.port}/0" in audit
    outputs.add("audit command", run("audit", "--json").stdout)

    # RabbitMQ: a refused login and a refused management API password.
    if service_reachable(*AMQP):
        amqp_wrong = f"amqp://guest:{enc(WRONG)}@127.0.0.1:5672//"
        result = run("snapshot", "-b", amqp_wrong)
        assert result.returncode == 2 and "authentication failed" in result.stderr, result.stderr
        if service_reachable(*API):
            result = run("snapshot", "--json", "-b", "amqp://guest:guest@127.0.0.1:5672//",
                         "--rabbitmq-api", api_url(WRONG))
            assert result.returncode == 0, result.stderr
            errors = [q["error"] for q in json.loads(result.stdout)["queues"] if q["error"]]
            assert errors and all("authentication failed" in e for e in errors), errors

    outputs.assert_no_leak()


def test_a_refused_postgres_password_says_authentication_failed(tmp_path):
    if not service_reachable(*PG):
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    import psycopg2

    try:
        psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", password=WRONG, dbname="test",
                         connect_timeout=5).close()
    except psycopg2.OperationalError:
        pass
    else:
        pytest.skip("this PostgreSQL accepts any password (pg_hba 'trust'): it has no refusal to show")
    env = env_for(tmp_path)
    with RedisServer() as server:
        result = subprocess.run(
            [sys.executable, "-m", "taskwatch", "snapshot", "-b", server.url(0),
             "--jobstore", pg_url(WRONG), "--beat-db", pg_url(WRONG),
             "--result-backend", "db+" + pg_url(WRONG)],
            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("authentication failed") >= 3, result.stderr
    assert not leaks(result.stdout + result.stderr)


class Tmux:
    """A private tmux server (its own socket) running one command in an 80x24 window."""

    def __init__(self, command: str, cwd: Path) -> None:
        self.socket = f"taskwatch-secrets-{uuid.uuid4().hex[:8]}"
        self._tmux("-f", os.devnull, "new-session", "-d", "-x", "80", "-y", "24", "-s", "tw",
                   "-c", str(cwd), command)
        self._tmux("set-option", "-t", "tw", "remain-on-exit", "on")

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              timeout=30, check=True).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "tw")

    def everything(self) -> str:
        """The screen and the scrollback (what the program left on the terminal after it exited)."""
        return self._tmux("capture-pane", "-p", "-S", "-", "-t", "tw")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "tw", *keys)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install -y tmux)")
def test_the_tui_screen_and_terminal_hold_no_password_and_a_rotated_one_is_named(locked_redis, tmp_path):
    outputs = Outputs()
    good = {db: redis_url(locked_redis, PASSWORD, db) for db in range(4)}
    env = env_for(tmp_path)
    env["TERM"] = "xterm-256color"
    args = [sys.executable, "-m", "taskwatch", "--read-only", "-b", good[0],
            "--result-backend", redis_url(locked_redis, WRONG, 1), "--jobstore", good[2], "--bridge", good[3]]
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k.isidentifier())
    command = f"cd {shlex.quote(str(REPO_ROOT))} && env -i {exports} {shlex.join(args)}; echo TASKWATCH-EXIT=$?"
    tmux = Tmux(command, tmp_path)
    try:
        def shows(text: str):
            return lambda: text in outputs.add("screen", tmux.screen())

        wait_until(shows("● connected"), what="the header to say connected", detail=tmux.screen)
        for key in ("2", "P", "5", "3", "R", "1", "question_mark"):
            tmux.keys(key)
            outputs.add(f"screen after {key}", tmux.screen())
        tmux.keys("Escape")
        # The password is rotated under taskwatch and its connections dropped:
        # the header names the refusal, not an outage.
        admin = redis.Redis(host="127.0.0.1", port=locked_redis.port, password=PASSWORD)
        admin.config_set("requirepass", WRONG + "-rotated")
        admin.client_kill_filter(_type="normal", skipme=True)
        wait_until(shows("authentication failed"), what="the header to name the refused password",
                   detail=tmux.screen)
        tmux.keys("q")
        wait_until(lambda: "TASKWATCH-EXIT=" in tmux.everything(), what="taskwatch to exit",
                   detail=tmux.everything)
        outputs.add("terminal after exit", tmux.everything())
        assert "TASKWATCH-EXIT=0" in tmux.everything()
    finally:
        tmux.close()
    audit = tmp_path / "audit.jsonl"
    outputs.add("audit log", audit.read_text() if audit.exists() else "")
    outputs.assert_no_leak()
