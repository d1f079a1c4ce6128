"""The ``trellis-slack`` command line: read the environment once, then run a subcommand.

Exit codes: 0 success; 1 the bot stopped on an error, or ``check`` found a problem; 2 the
configuration is invalid (``run`` and ``check`` report it the same way).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from trellis_slack import __version__, logs
from trellis_slack.errors import ConfigError, DemoError, TrellisSlackError
from trellis_slack.settings import VARIABLES, Settings

log = logging.getLogger(__name__)


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
        epilog="Configuration comes from environment variables: see `trellis-slack config`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser("run", help="start the bot (Socket Mode)")
    commands.add_parser(
        "check",
        help="check the configuration, Slack and Trellis, and say what to fix (exit 1 on a problem)",
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


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = _parser().parse_args(argv)
    environ = os.environ if env is None else env
    if args.command == "config":
        for name, meaning in VARIABLES.items():
            print(f"{name:24} {meaning}")
        return 0
    if args.command == "demo":
        return _demo(args.port, open_browser=not args.no_browser, environ=environ)
    try:
        settings = Settings.from_mapping(environ)
    except ConfigError as exc:
        verb = "check" if args.command == "check" else "start"
        _print_problems(f"cannot {verb}, the configuration has problems:", exc)
        print("Run `trellis-slack config` for the list of variables.", file=sys.stderr)
        return 2
    secrets = [
        s
        for s in (
            settings.slack_bot_token,
            settings.slack_app_token,
            settings.trellis_token,
            settings.trellis_api_key,
        )
        if s
    ]
    if args.command == "check":
        # The report is the output: the log only says more when asked to (LOG_LEVEL=DEBUG).
        logs.configure(
            "DEBUG" if settings.log_level == "DEBUG" else "ERROR", secrets, fmt=settings.log_format
        )
        return _check(settings, tuple(secrets))
    logs.configure(settings.log_level, secrets, fmt=settings.log_format)
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


def _check(settings: Settings, secrets: tuple[str, ...]) -> int:
    from trellis_slack.ops.diagnostics import run_checks  # noqa: PLC0415  (keeps `--help` fast)

    report = asyncio.run(run_checks(settings))
    print(report.render(secrets))
    return 0 if report.passed else 1


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
