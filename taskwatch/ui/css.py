"""Where the stylesheet lives: inside the installed package, or at the repo top."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def css_path() -> Path:
    """``taskwatch/taskwatch.css`` in a wheel; ``./taskwatch.css`` in a checkout."""
    installed = _PACKAGE_DIR / "taskwatch.css"
    if installed.is_file():
        return installed
    return _PACKAGE_DIR.parent / "taskwatch.css"
