"""The built wheel carries the stylesheet and the console script."""

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_contains_stylesheet_and_entry_point(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(REPO)],
        check=True, capture_output=True, timeout=120,
    )
    (wheel,) = tmp_path.glob("taskwatch-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert "taskwatch/taskwatch.css" in names
        assert archive.read("taskwatch/taskwatch.css") == (REPO / "taskwatch.css").read_bytes()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "taskwatch = taskwatch.cli:main" in archive.read(entry_points).decode()
