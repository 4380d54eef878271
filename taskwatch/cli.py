"""``taskwatch`` command line: the TUI, ``snapshot``, ``demo`` and ``config``.

Errors the user can fix (bad flags, bad URLs, an unreachable broker, a
module that does not import) print one line on stderr and exit 2.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import click

from taskwatch import __version__
from taskwatch.config import ConfigError, Settings, resolve
from taskwatch.sources.errors import SourceError
from taskwatch.text import mask_secrets

EXIT_USAGE = 2

_COMMON = [
    click.option("-A", "--app", "app", metavar="APP", help="Celery app to load, as with `celery -A` (module, module:attr, package)."),
    click.option("-b", "--broker", "broker_url", metavar="URL", help="Broker URL (redis://, amqp://, ...). Env: CELERY_BROKER_URL."),
    click.option("--result-backend", "result_backend", metavar="URL", help="Result backend URL. Env: CELERY_RESULT_BACKEND."),
    click.option("--jobstore", "jobstores", metavar="URL", multiple=True, help="APScheduler job store URL (repeatable). Env: TASKWATCH_JOBSTORE."),
    click.option("--read-only/--read-write", "read_only", default=None, help="Refuse every action that changes the cluster."),
    click.option("--inspect-timeout", "inspect_timeout", type=float, metavar="SECONDS", help="How long to wait for workers to answer (default 1)."),
    click.option("--profile", "profile", metavar="NAME", help="Profile from the config file. Env: TASKWATCH_PROFILE."),
    click.option("--config", "config_file", metavar="FILE", help="Config file (default: the user config dir's taskwatch/config.toml)."),
]


def common_options(func):
    for option in reversed(_COMMON):
        func = option(func)
    return func


def _merged(ctx: click.Context, **own: Any) -> dict[str, Any]:
    """Options given to the group, overridden by those given to the subcommand."""
    values = dict(ctx.obj or {})
    values.update({k: v for k, v in own.items() if v is not None and v != ()})
    return values


def load_settings(values: dict[str, Any]) -> tuple[Settings, Any]:
    """Resolve settings, import the ``-A`` app, check there is a broker."""
    options = dict(values)
    config_file = options.pop("config_file", None)
    profile = options.pop("profile", None)
    settings = resolve(options, config_file=config_file, profile=profile)
    app = None
    if settings.app:
        from taskwatch.sources.celery_app import app_urls, load_app

        app = load_app(settings.app)
        settings = settings.with_app_defaults(*app_urls(app))
    if not settings.broker_url:
        raise ConfigError(
            "no broker: pass -b URL or -A APP, set CELERY_BROKER_URL, or add broker_url to a config profile"
        )
    return settings, app


class _Group(click.Group):
    def format_epilog(self, ctx, formatter):
        formatter.write_paragraph()
        formatter.write_text(
            "Without a command, opens the TUI. Settings come from the command line, then "
            "TASKWATCH_* / CELERY_BROKER_URL / CELERY_RESULT_BACKEND, then the config file."
        )


@click.group(cls=_Group, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="taskwatch")
@common_options
@click.pass_context
def cli(ctx: click.Context, **options: Any) -> None:
    """A terminal UI to watch and fix Celery clusters and their schedulers."""
    ctx.obj = {k: v for k, v in options.items() if v is not None and v != ()}
    if ctx.invoked_subcommand is not None:
        return
    settings, app = load_settings(ctx.obj)
    from taskwatch.sources.broker import probe

    probe(settings.broker_url, timeout=3.0)
    ctx.exit(_run_tui(settings, app))


def _run_tui(settings: Settings, app: Any = None) -> int:
    from taskwatch.ui.app import TaskwatchApp

    tui = TaskwatchApp(settings, celery_app=app)
    result = tui.run()
    return result if isinstance(result, int) else (tui.return_code or 0)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema documented in the README).")
@common_options
@click.pass_context
def snapshot(ctx: click.Context, as_json: bool, **options: Any) -> None:
    """Print the cluster's state once, without the UI."""
    from taskwatch.engine import snapshot as snap
    from taskwatch.engine.workers import WorkerTable
    from taskwatch.sources.broker import probe
    from taskwatch.sources.inspect import Inspector

    settings, app = load_settings(_merged(ctx, **options))
    probe(settings.broker_url, timeout=3.0)
    inspector = Inspector(settings.broker_url, app=app, timeout=settings.inspect_timeout)
    try:
        poll = inspector.poll_workers()
    finally:
        inspector.close()
    if poll.broker_error:
        raise SourceError(poll.broker_error)
    workers = WorkerTable()
    workers.apply_poll(poll)
    document = snap.build(workers, settings.broker_url, now=time.time())
    if as_json:
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(_format_snapshot(document))


def _format_snapshot(doc: dict[str, Any]) -> str:
    from taskwatch.text import clean

    lines = [f"broker  {doc['broker']}", f"taken   {doc['taken_at']}", ""]
    rows = [("WORKER", "STATE", "POOL", "CONC", "PROCESSED", "QUEUES")]
    for w in doc["workers"]:
        rows.append((
            clean(w["hostname"], 60, single_line=True),
            "online" if w["online"] else "offline",
            w["pool"] or "-",
            "-" if w["concurrency"] is None else str(w["concurrency"]),
            "-" if w["processed"] is None else str(w["processed"]),
            clean(", ".join(w["queues"]), 80, single_line=True) or "-",
        ))
    if len(rows) == 1:
        lines.append("no worker answered ping")
    else:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines += ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    return "\n".join(lines)


@cli.command("config")
@common_options
@click.pass_context
def show_config(ctx: click.Context, **options: Any) -> None:
    """Show the settings in force and where each one came from (secrets masked)."""
    values = _merged(ctx, **options)
    values.pop("config_file", None), values.pop("profile", None)
    settings = resolve(
        {k: v for k, v in values.items()},
        config_file=_merged(ctx, **options).get("config_file"),
        profile=_merged(ctx, **options).get("profile"),
    )
    click.echo(f"config file  {settings.config_file or '(none)'}")
    click.echo(f"profile      {settings.profile or '(none)'}")
    for name, shown, origin in settings.describe():
        click.echo(f"{name:<17}{shown:<50} {origin}")


@cli.command()
@click.option("--headless", is_flag=True, help="No UI: print the URLs and run until SIGINT/SIGTERM.")
def demo(headless: bool) -> None:
    """Start a private demo cluster (Redis, 2 workers, beat, APScheduler, traffic) and watch it."""
    from taskwatch.demo.cluster import run

    def open_ui(cluster) -> int:
        settings = Settings(
            broker_url=cluster.broker_url,
            result_backend=cluster.result_backend,
            jobstores=(cluster.jobstore_url,),
            profile="demo",
            origins={"broker_url": "demo", "result_backend": "demo", "jobstores": "demo"},
        )
        return _run_tui(settings)

    sys.exit(run(headless=headless, open_ui=open_ui))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one-line errors, never a traceback."""
    try:
        rc = cli.main(args=argv, prog_name="taskwatch", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # pragma: no cover - not enabled
        click.echo(exc.format_message(), err=True)
        rc = EXIT_USAGE
    except click.UsageError as exc:
        sub = f"{exc.ctx.info_name} " if exc.ctx is not None and exc.ctx.parent is not None else ""
        hint = f" (see `taskwatch {sub}--help`)"
        click.echo(f"taskwatch: {exc.format_message()}{hint}", err=True)
        rc = EXIT_USAGE
    except (ConfigError, SourceError) as exc:
        click.echo(f"taskwatch: {exc}", err=True)
        rc = EXIT_USAGE
    except click.ClickException as exc:
        click.echo(f"taskwatch: {exc.format_message()}", err=True)
        rc = exc.exit_code
    except click.exceptions.Abort:
        click.echo("taskwatch: aborted", err=True)
        rc = 130
    except KeyboardInterrupt:
        rc = 130
    except Exception as exc:  # noqa: BLE001 - a bug: say so in one line, keep the details reachable
        if os.environ.get("TASKWATCH_DEBUG"):
            raise
        click.echo(
            f"taskwatch: internal error: {type(exc).__name__}: {mask_secrets(str(exc))} "
            "(run with TASKWATCH_DEBUG=1 for the traceback)",
            err=True,
        )
        rc = 1
    sys.exit(rc if isinstance(rc, int) else 0)
