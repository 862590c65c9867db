"""The command line: `python local/stackctl [--profile dev|test] COMMAND [ARGS]`."""

from __future__ import annotations

import argparse
import os
from typing import Callable

from common import config

from . import __doc__ as DOC
from .components import components
from .faults import cmd_toxic
from .keys import cmd_rotate_keys
from .lifecycle import cmd_down, cmd_logs, cmd_restart, cmd_start, cmd_status, cmd_stop, cmd_up
from .lifecycle import prepare
from .preparation import run_bootstrap
from .rolling import cmd_reload, cmd_rolling_restart
from .urls import cmd_urls

COMMANDS = ["up", "down", "status", "start", "stop", "restart", "reload", "rolling-restart",
            "logs", "toxic", "bootstrap", "prepare", "rotate-keys", "urls"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stackctl", description=(DOC or "").splitlines()[0])
    parser.add_argument("--profile", default=config.env("MURMUR_PROFILE", "dev"),
                        choices=sorted(config.PROFILES))
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("args", nargs="*")
    args = parser.parse_args(argv)
    name = args.args[0] if args.args else None
    os.environ["MURMUR_PROFILE"] = args.profile
    if args.command in ("start", "stop", "restart", "reload") and not name:
        parser.error(f"{args.command} needs a component name (SERVICE=x)")
    commands: dict[str, Callable[[], object]] = {
        "up": lambda: cmd_up(args.profile),
        "down": cmd_down,
        "status": cmd_status,
        "start": lambda: cmd_start(name),
        "stop": lambda: cmd_stop(name),
        "restart": lambda: cmd_restart(name),
        "reload": lambda: cmd_reload(name),
        "rolling-restart": lambda: cmd_rolling_restart(args.profile),
        "toxic": lambda: cmd_toxic(args.profile, args.args),
        "logs": lambda: cmd_logs(name),
        "prepare": lambda: prepare(components()),
        "bootstrap": lambda: run_bootstrap(args.profile),
        "rotate-keys": lambda: cmd_rotate_keys(args.profile),
        "urls": lambda: cmd_urls(args.profile),
    }
    commands[args.command]()
    return 0
