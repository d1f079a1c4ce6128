"""The ``trellis-slack`` command line: read the environment (and ``./.env``) once, then a subcommand.

Exit codes: 0 success; 1 the bot stopped on an error, ``check`` found a problem (a configuration
problem included: ``check`` reports it and checks what it still can), or ``copy-state`` could not
copy; 2 ``run`` or ``copy-state`` cannot start, the configuration (or an argument) is invalid.

``copy-state SQLITE_PATH [POSTGRES_URL]`` copies a state file into PostgreSQL; without a URL it
takes ``TRELLIS_SLACK_DB`` (from the environment or ``./.env``), which keeps the password out of
the command line (``ps`` and shell histories show arguments). It prints the rows copied per table;
the URL is shown without its password.

``run`` and ``check`` read ``./.env`` when it exists, or the file ``--env-file`` names (which must
exist), with python-dotenv, without interpolation (a ``$`` in a token stays a ``$``, as with
``docker --env-file``) and without touching ``os.environ``. The real environment wins over the
file. Which file was read, and which of its names the environment overrides, is said at start-up;
values never are.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from trellis_slack import __version__, logs
from trellis_slack.errors import ConfigError, DemoError, TrellisSlackError
from trellis_slack.settings import VARIABLES, Settings
from trellis_slack.store.target import passwords_of

log = logging.getLogger(__name__)

#: The variables whose values are secrets: scrubbed from whatever is printed or logged.
_SECRETS = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "TRELLIS_TOKEN", "TRELLIS_API_KEY")


def _port(text: str) -> int:
    """A TCP port number for ``--port``."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return port


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trellis-slack",
        description="Ask the Trellis AI data analyst questions from Slack.",
        epilog="Configuration comes from environment variables and ./.env: see `trellis-slack config`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    env_file = argparse.ArgumentParser(add_help=False)
    env_file.add_argument(
        "--env-file",
        metavar="PATH",
        help="read variables from this file instead of ./.env (the environment wins over it)",
    )
    commands.add_parser(
        "run",
        parents=[env_file],
        help="start the bot (Socket Mode; exit 2 on a configuration problem)",
    )
    commands.add_parser(
        "check",
        parents=[env_file],
        help="check the configuration, Slack, Trellis and the state store, and say what to fix "
        "(exit 1 on a problem)",
    )
    copy_state = commands.add_parser(
        "copy-state",
        parents=[env_file],
        help="copy a SQLite state file into PostgreSQL, to run several replicas (rows already "
        "there are kept; safe to run again)",
        description="Copy every thread, question, answer, vote and setting of a SQLite state file "
        "into a PostgreSQL database (migrating both first). Rows already in the database are "
        "kept, so running it again adds nothing. Stop the bot using the file first. Prints the "
        "rows copied per table; exit 1 if the copy failed, 2 on a wrong argument.",
    )
    copy_state.add_argument("sqlite_path", metavar="SQLITE_PATH", help="the state file to copy")
    copy_state.add_argument(
        "postgres_url",
        metavar="POSTGRES_URL",
        nargs="?",
        help="the database, postgresql://user:password@host/db (default: TRELLIS_SLACK_DB, "
        "which keeps the password off the command line)",
    )
    commands.add_parser("config", help="list the environment variables the bot reads")
    demo = commands.add_parser(
        "demo",
        help="try the bot offline in your browser: a local Slack and Trellis, no configuration",
    )
    demo.add_argument(
        "--port", type=_port, default=None, help="port of the page on 127.0.0.1 (0: any free one)"
    )
    demo.add_argument("--no-browser", action="store_true", help="only print the page's address")
    return parser


def read_env_file(
    environ: Mapping[str, str], env_file: str | None, cwd: Path | None
) -> tuple[dict[str, str], str | None]:
    """``environ`` over the variables of ``env_file`` (or ``cwd/.env``), and what was read, in words.

    The words name the file and the variables the environment overrides, never a value. No
    ``./.env`` (or no ``cwd``) and no ``--env-file`` is not an error; a missing ``--env-file`` is
    (``ConfigError``). A relative ``--env-file`` is taken from ``cwd`` (else the current folder).
    """
    from dotenv import dotenv_values  # noqa: PLC0415  (keeps `--help` fast)

    if env_file is None:
        path, shown = (cwd or Path()) / ".env", "./.env"
        if cwd is None or not path.is_file():
            return dict(environ), None
    else:
        path, shown = Path(env_file), env_file
        if not path.is_absolute():
            path = (cwd or Path.cwd()) / path
        if not path.is_file():
            raise ConfigError([f"--env-file {env_file}: there is no such file"])
    try:
        values = dotenv_values(path, interpolate=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read {shown}: {type(exc).__name__}"]) from None
    read = {name: value for name, value in values.items() if value is not None}
    overridden = sorted(name for name in read if name in environ)
    note = f"read {len(read)} variable{'s' if len(read) != 1 else ''} from {shown}"
    if overridden:
        note += f"; the environment overrides {', '.join(overridden)}"
    return {**read, **environ}, note


def main(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    cwd: Path | None = None,
) -> int:
    """Entry point of the console script; returns the process exit code.

    ``env`` stands for ``os.environ``, ``cwd`` for the folder ``./.env`` is looked up in. Without
    ``cwd``: the current folder for the real environment; none for a given ``env`` (tests), whose
    runs then read only an ``--env-file``.
    """
    args = _parser().parse_args(argv)
    environ: Mapping[str, str] = os.environ if env is None else env
    if args.command == "config":
        for name, meaning in VARIABLES.items():
            print(f"{name:24} {meaning}")
        return 0
    if args.command == "demo":
        return _demo(args.port, open_browser=not args.no_browser, environ=environ)
    try:
        folder = cwd if cwd is not None else (Path.cwd() if env is None else None)
        environ, note = read_env_file(environ, args.env_file, folder)
    except ConfigError as exc:
        _print_problems(f"cannot {args.command}, the configuration has problems:", exc)
        return 2
    secrets = [environ[name].strip() for name in _SECRETS if environ.get(name, "").strip()]
    # The password of a PostgreSQL TRELLIS_SLACK_DB, as written and decoded (the store hides it
    # in its own errors; this catches whatever else might quote it).
    secrets += passwords_of(environ.get("TRELLIS_SLACK_DB", "").strip())
    if args.command == "check":
        return _check(environ, note, secrets)
    if args.command == "copy-state":
        return _copy_state(args.sqlite_path, args.postgres_url, environ, note, secrets)
    try:
        settings = Settings.from_mapping(environ)
    except ConfigError as exc:
        if note:
            print(f"trellis-slack: {note}", file=sys.stderr)
        _print_problems("cannot start, the configuration has problems:", exc)
        print("Run `trellis-slack config` for the list of variables.", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, secrets, fmt=settings.log_format)
    if note:
        log.info("%s", note)
    for warning in settings.warnings:
        log.warning("%s", warning)
    try:
        return _run(settings)
    except ConfigError as exc:  # found only when talking to Slack (a rejected token, say)
        _print_problems("cannot start, the configuration has problems:", exc)
        return 2
    except TrellisSlackError as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 0


def _print_problems(headline: str, exc: ConfigError) -> None:
    print(f"trellis-slack: {headline}", file=sys.stderr)
    for problem in exc.problems:
        print(f"  - {problem}", file=sys.stderr)


def _check(environ: Mapping[str, str], note: str | None, secrets: list[str]) -> int:
    """``check``: the report is the output; the log says more only with ``LOG_LEVEL=DEBUG``."""
    from trellis_slack.ops.diagnostics import check_environment  # noqa: PLC0415  (fast `--help`)

    debug = environ.get("LOG_LEVEL", "").strip().upper() == "DEBUG"
    fmt: logs.LogFormat = "json" if environ.get("LOG_FORMAT", "").strip() == "json" else "text"
    # Above CRITICAL: no log line (a failed socket, a library's retry) lands above the report.
    logs.configure("DEBUG" if debug else "CRITICAL", secrets, fmt=fmt)
    if not debug:
        logging.getLogger().setLevel(logging.CRITICAL + 1)
    if note:
        print(f"Configuration: {note}.")
    report = asyncio.run(check_environment(environ))
    print(report.render(tuple(secrets)))
    return 0 if report.passed else 1


def _copy_state(
    sqlite_path: str,
    postgres_url: str | None,
    environ: Mapping[str, str],
    note: str | None,
    secrets: list[str],
) -> int:
    """``copy-state``: the rows copied per table on stdout; the log shows warnings only."""
    from trellis_slack.store.copy import copy_sqlite_to_postgres  # noqa: PLC0415  (fast `--help`)
    from trellis_slack.store.target import describe, is_postgres  # noqa: PLC0415

    url = postgres_url if postgres_url is not None else environ.get("TRELLIS_SLACK_DB", "").strip()
    secrets = [*secrets, *passwords_of(url)]
    debug = environ.get("LOG_LEVEL", "").strip().upper() == "DEBUG"
    logs.configure("DEBUG" if debug else "WARNING", secrets)
    if not is_postgres(url):
        where = "POSTGRES_URL" if postgres_url is not None else "TRELLIS_SLACK_DB"
        problem = (
            f"{where} must be a postgresql:// URL"
            if url
            else "give POSTGRES_URL, or set TRELLIS_SLACK_DB to a postgresql:// URL"
        )
        _print_problems("cannot copy-state:", ConfigError([problem]))
        return 2
    if note:
        print(f"Configuration: {note}.")
    try:
        added = asyncio.run(copy_sqlite_to_postgres(sqlite_path, url))
    except TrellisSlackError as exc:
        print(f"trellis-slack copy-state: {logs.scrub(str(exc), secrets)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 1
    print(f"Copied {sqlite_path} into {describe(url)} (rows already there kept):")
    width = max(len(table) for table in added)
    for table, rows in added.items():
        print(f"  {table:{width}}  {rows}")
    total = sum(added.values())
    print(f"{total} row{'s' if total != 1 else ''} copied" + ("" if total else ": nothing new"))
    return 0


def _demo(port: int | None, *, open_browser: bool, environ: Mapping[str, str]) -> int:
    """``trellis-slack demo``: needs no configuration; the bot's own log shows warnings only."""
    from trellis_slack.demo import runner  # noqa: PLC0415  (keeps `--help` fast)

    logs.configure("WARNING")
    try:
        return asyncio.run(
            runner.run(
                runner.DEFAULT_PORT if port is None else port,
                open_browser=open_browser and runner.display_available(environ),
            )
        )
    except DemoError as exc:
        print(f"trellis-slack demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def _run(settings: Settings) -> int:
    from trellis_slack.bot.app import serve  # noqa: PLC0415  (keeps `--help` fast)

    return asyncio.run(serve(settings))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
