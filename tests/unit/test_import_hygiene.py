"""The headless layers must not pull in Textual or Rich (harlequin's check).

import-linter checks the imports written in our code; this checks what
actually lands in ``sys.modules``, through third-party packages too. Every
module of the package is checked except the UI's, so a new module is
covered the day it is added.
"""

import pkgutil
import subprocess
import sys

import pytest

import taskwatch

#: Packages whose modules may import Textual or Rich: the UI itself.
UI_PACKAGES = ("taskwatch.ui",)


def headless_modules() -> list[str]:
    """Every module of taskwatch outside the UI packages, sorted."""
    found = ["taskwatch"]
    for info in pkgutil.walk_packages(taskwatch.__path__, "taskwatch."):
        if any(info.name == p or info.name.startswith(p + ".") for p in UI_PACKAGES):
            continue
        found.append(info.name)
    return sorted(found)


HEADLESS = headless_modules()


def test_the_walk_finds_the_modules_a_hand_kept_list_missed():
    for module in ("taskwatch.cli", "taskwatch.monitor", "taskwatch.sources.queues",
                   "taskwatch.demo.app", "taskwatch.demo.producer", "taskwatch.demo.scheduler"):
        assert module in HEADLESS
    assert not [m for m in HEADLESS if m.startswith("taskwatch.ui")]


@pytest.mark.parametrize("module", HEADLESS)
def test_headless_module_does_not_import_textual_or_rich(module):
    # Imported under its own name, not run: a __main__ module's
    # `if __name__ == "__main__"` guard keeps it from starting anything.
    code = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr


def test_each_command_module_imports_first_whatever_the_order():
    """cli imports the command modules, which import cli: none may need another half-imported."""
    import subprocess
    import sys

    for module in ("taskwatch.cli_actions", "taskwatch.cli_jobs", "taskwatch.cli_doctor", "taskwatch.cli"):
        done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (module, done.stderr[-500:])
