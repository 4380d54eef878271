"""``taskwatch doctor``: checks a cluster's setup and says, one line each, what to fix.

Exit status: 0 when every check is ok or skipped, 1 when one warns or
fails, 2 for usage errors and a broker that does not answer (as every
other command).
"""

from __future__ import annotations

import json
from typing import Any

import click

from taskwatch.cli import _merged, cli, common_options, load_settings
from taskwatch.config import number
from taskwatch.text import clean

#: Default seconds of listening to events: two worker heartbeats (every 2 s) and some.
DEFAULT_LISTEN = "5"
_LABEL = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "skipped": "skip"}


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (schema in the README).")
@click.option("--listen", "listen_text", default=DEFAULT_LISTEN, metavar="SECONDS", show_default=True,
              help="Listen to events this long (worker events, clocks, event rate); 0 skips those checks.")
@common_options
@click.pass_context
def doctor(ctx: click.Context, as_json: bool, listen_text: str, **options: Any) -> None:
    """Check the cluster's setup and explain each problem with its fix.

    Exit 0 when all is well, 1 when a check warns or fails, 2 for bad
    input or a broker that does not answer.
    """
    from taskwatch import doctor as checks
    from taskwatch.sources.broker import probe

    listen = float(number("listen", listen_text, "command line"))
    settings, app = load_settings(_merged(ctx, **options))
    probe(settings.broker_url, timeout=3.0)
    observed = checks.observe(settings, app, listen=listen)
    findings = checks.diagnose(observed)
    if as_json:
        click.echo(json.dumps(checks.document(observed, findings), indent=2, ensure_ascii=False))
    else:
        answered = f" ({checks.names(list(observed.pings))})" if observed.pings else ""
        click.echo(f"broker {observed.broker}, {len(observed.pings)} worker(s) answered{answered}, "
                   f"listened {listen:g} s")
        width = max(len(f.id) for f in findings)
        for f in findings:
            line = f"{_LABEL[f.status]:<4}  {f.id:<{width}}  {f.seen}"
            if f.fix:
                line += f" -> fix: {f.fix}"
            click.echo(clean(line, 1000, single_line=True))
    ctx.exit(checks.exit_code(findings))
