"""The ``trellis-slack`` command line: read the environment once, then run a subcommand."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from trellis_slack import __version__, logs
from trellis_slack.errors import ConfigError, TrellisSlackError
from trellis_slack.settings import VARIABLES, Settings

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trellis-slack",
        description="Ask the Trellis AI data analyst questions from Slack.",
        epilog="Configuration comes from environment variables: see `trellis-slack config`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser("run", help="start the bot (Socket Mode)")
    commands.add_parser("config", help="list the environment variables the bot reads")
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = _parser().parse_args(argv)
    environ = os.environ if env is None else env
    if args.command == "config":
        for name, meaning in VARIABLES.items():
            print(f"{name:24} {meaning}")
        return 0
    try:
        settings = Settings.from_mapping(environ)
    except ConfigError as exc:
        print("trellis-slack: cannot start, the configuration has problems:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
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
    logs.configure(settings.log_level, secrets)
    for warning in settings.warnings:
        log.warning("%s", warning)
    try:
        return _run(settings)
    except TrellisSlackError as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 0


def _run(settings: Settings) -> int:
    from trellis_slack.app import serve  # noqa: PLC0415  (keeps `--help` fast)

    return asyncio.run(serve(settings))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
