"""`taskwatch demo --headless` prints the whole command for a second terminal, as the README says."""

from __future__ import annotations

import shlex
from pathlib import Path
from types import SimpleNamespace

from taskwatch.demo.cluster import SECOND_TERMINAL, _announce

README = Path(__file__).resolve().parents[2] / "README.md"


def _fake_cluster(port: int) -> SimpleNamespace:
    base = f"redis://127.0.0.1:{port}"
    workdir = Path("/tmp/taskwatch-demo-abc123")
    return SimpleNamespace(broker_url=f"{base}/0", result_backend=f"{base}/1", jobstore_url=f"{base}/2",
                           workdir=workdir, beat_schedule=workdir / "celerybeat-schedule",
                           redis=SimpleNamespace(host="127.0.0.1", port=port))


def test_headless_prints_the_second_terminal_command(capsys):
    _announce(_fake_cluster(41234))
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2] == SECOND_TERMINAL
    argv = shlex.split(lines[-1])
    assert argv[:3] == ["taskwatch", "-A", "taskwatch.demo.app"]
    assert argv[argv.index("-b") + 1] == "redis://127.0.0.1:41234/0"
    assert argv[argv.index("--result-backend") + 1] == "redis://127.0.0.1:41234/1"
    assert argv[argv.index("--jobstore") + 1] == "redis://127.0.0.1:41234/2"


def test_readme_shows_what_headless_prints(capsys):
    _announce(_fake_cluster(41234))
    printed = capsys.readouterr().out.replace("41234", "PORT").splitlines()
    block = README.read_text().split("<!-- demo-headless -->\n", 1)[1].split("\n\n", 1)[0]
    readme = [line.removeprefix("    ") for line in block.splitlines()]
    assert len(readme) == len(printed)
    for shown, real in zip(readme, printed, strict=True):
        if real.startswith("TASKWATCH_DEMO_DIR="):
            assert shown.startswith("TASKWATCH_DEMO_DIR=/tmp/taskwatch-demo-")
        elif "--beat-schedule" in real:
            head, _, path = shown.rpartition(" ")
            assert real.startswith(head + " ") and path.startswith("/tmp/taskwatch-demo-")
            assert path.endswith("/celerybeat-schedule")
        else:
            assert shown == real
