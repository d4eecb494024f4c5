"""Where a running stack is: the one a command starts on this machine, or one elsewhere (a cluster) given by the
addresses of the services the command calls and of its Kafka brokers."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from learnerfit.catalog import CATALOG
from learnerfit.errors import InvalidInput
from learnerfit.local.processes import channel
from learnerfit.local.stack import LocalStack
from learnerfit.runtime.bus import Bus


@dataclass(frozen=True)
class StackAddresses:
    """gRPC targets (HOST:PORT) of the services a command calls ("" for those it does not), and the bus."""

    bootstrap_servers: str
    gateway: str = ""
    curator: str = ""
    trainer: str = ""
    registry: str = ""
    drift_scorer: str = ""
    reward_scorer: str = ""
    topic_prefix: str = ""
    local: bool = False  # a stack this command started: its processes can be checked on

    @classmethod
    def of(cls, stack: LocalStack) -> StackAddresses:
        services = stack.state.services
        return cls(bootstrap_servers=stack.state.bootstrap_servers, local=True,
                   **{name: services[name].grpc_target for name in CALLABLE if name in services})

    def channel(self, service: str):
        target = getattr(self, service)
        if not target:
            raise InvalidInput(target_flag(service), "this command needs the address of the stack's " + service)
        return channel(target)

    def bus(self, client_id: str) -> Bus:
        return Bus(self.bootstrap_servers, client_id=client_id, topic_prefix=self.topic_prefix)


CALLABLE = tuple(s.name for s in CATALOG if s.api_clients)  # the services a CLI command may call


def target_flag(service: str) -> str:
    """The option that gives a service's address: --gateway-target, --drift-scorer-target."""
    return f"--{service.replace('_', '-')}-target"


def add_address_options(parser: argparse.ArgumentParser, services: Sequence[str]) -> None:
    group = parser.add_argument_group(
        "a running stack", "Point the command at a stack that runs elsewhere (a cluster) instead of starting one "
                           "here: every address below, plaintext gRPC and Kafka. The stack's own settings then "
                           "apply (its trainer's budget and evaluation, its Oracle); options that configure a "
                           "local stack are ignored.")
    for service in services:
        group.add_argument(target_flag(service), metavar="HOST:PORT", help=f"the {service} service's gRPC address")
    group.add_argument("--bootstrap-servers", metavar="HOST:PORT[,HOST:PORT]", help="its Kafka brokers")
    group.add_argument("--topic-prefix", default="", help="its topics' prefix (bus.topic_prefix), if it has one")


def given_addresses(args: argparse.Namespace, services: Sequence[str]) -> StackAddresses | None:
    """The running stack the flags name, or None when they name none (the command then starts a local one)."""
    targets = {service: getattr(args, f"{service}_target", None) or "" for service in services}
    if not any(targets.values()) and not args.bootstrap_servers:
        return None
    missing = [target_flag(service) for service, target in targets.items() if not target]
    missing += [] if args.bootstrap_servers else ["--bootstrap-servers"]
    if missing:
        raise InvalidInput(missing[0], f"a running stack is given by all of its addresses; missing: "
                                       f"{', '.join(missing)}")
    return StackAddresses(bootstrap_servers=args.bootstrap_servers, topic_prefix=args.topic_prefix, **targets)
