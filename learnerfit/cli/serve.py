"""`learnerfit serve SERVICE`: runs one service in the foreground, as a container's entry point does.

The CLI never imports a service; it becomes `python -m <its module>` as the catalog names it (exec, so signals reach
the service directly and the container's PID 1 is the service). Its settings come from LEARNERFIT_CONFIG and LEARNERFIT_*.
"""

from __future__ import annotations

import argparse
import os
import sys

from learnerfit.catalog import CATALOG
from learnerfit.errors import InvalidInput


def cmd_serve(args: argparse.Namespace) -> int:
    if args.service not in CATALOG.names():
        raise InvalidInput("service", f"unknown service {args.service!r}; one of {', '.join(CATALOG.names())}")
    os.execv(sys.executable, [sys.executable, "-m", CATALOG.get(args.service).module, *args.service_args])
    return 0  # not reached


def register(commands, common: argparse.ArgumentParser) -> None:
    serve = commands.add_parser("serve", parents=[common], help="run one service in the foreground (a container's "
                                                                "entry point)",
                                description="Runs one service; its settings come from the YAML file named by "
                                            "LEARNERFIT_CONFIG and LEARNERFIT_* variables (see docs/settings.md). "
                                            "Arguments after the name go to the service: `learnerfit serve "
                                            "generator --help` lists its API, topics and settings.")
    serve.add_argument("service", help=f"one of {', '.join(CATALOG.names())}")
    serve.add_argument("service_args", nargs=argparse.REMAINDER, help="passed to the service (--help, --print-config)")
    serve.set_defaults(func=cmd_serve)
