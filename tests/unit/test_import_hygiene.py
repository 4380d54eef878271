"""The headless layers must not pull in Textual or Rich (harlequin's check).

import-linter checks the imports written in our code; this checks what
actually lands in ``sys.modules``, through third-party packages too.
"""

import subprocess
import sys

import pytest

HEADLESS = [
    "taskwatch.config",
    "taskwatch.text",
    "taskwatch.sources.broker",
    "taskwatch.sources.inspect",
    "taskwatch.sources.celery_app",
    "taskwatch.engine.state",
    "taskwatch.sources.events",
    "taskwatch.monitor",
    "taskwatch.sources.queues",
    "taskwatch.sources.envelope",
    "taskwatch.sources.results",
    "taskwatch.sources.safe_pickle",
    "taskwatch.engine.query",
    "taskwatch.engine.schedules",
    "taskwatch.engine.snapshot",
    "taskwatch.demo.cluster",
]


@pytest.mark.parametrize("module", HEADLESS)
def test_headless_module_does_not_import_textual_or_rich(module):
    code = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
