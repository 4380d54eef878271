"""``python -m taskwatch.demo --headless``: the demo cluster without the UI."""

from __future__ import annotations

import argparse
import sys

from taskwatch.demo.cluster import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m taskwatch.demo",
        description="Run taskwatch's demo Celery cluster until Ctrl-C or SIGTERM.",
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="required here; `taskwatch demo` without it opens the UI",
    )
    args = parser.parse_args(argv)
    if not args.headless:
        parser.error("this entry point only runs --headless; use `taskwatch demo` for the UI")
    return run(headless=True)


if __name__ == "__main__":
    sys.exit(main())
