"""`learnerfit dead-letters [--batch ID] [--replay ID [--value-file JSON]]`: what the stages gave up on, and
putting a record back.

Reads the `dead-letter` topic from the beginning: the local stack's, or any broker's,
described as a service's settings describe it (`--bus-config` a service's config file,
or LEARNERFIT_BUS__* in the environment: TLS and SASL included; `--bootstrap-servers`
alone for a plaintext one). Each dead letter holds the record as it was read, so
`--replay` publishes it again on the topic it came from, under its own key and id:
after a back end came back (a transient failure), as it was; after fixing a bad
record, with `--value-file` (the record as JSON, in its protobuf type's field names).
A replayed letter is marked (a copy with `replayed_at_ms` on the dead-letter topic),
and replaying it again is refused unless `--again` says so.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from google.protobuf import json_format, message_factory, symbol_database
from google.protobuf.message import Message
from pydantic_settings import SettingsConfigDict, YamlConfigSettingsSource

from learnerfit.cli.output import console, say, table
from learnerfit.domain import topics
from learnerfit.errors import FailedPrecondition, InvalidInput, NotFound
from learnerfit.local.stack import StackState
from learnerfit.runtime.app import DEAD_LETTER
from learnerfit.runtime.bus import ID_HEADER, TYPE_HEADER, Bus
from learnerfit.runtime.settings import ENV_PREFIX, BusSettings, ServiceSettings
from learnerfit.v1 import records_pb2, runtime_pb2


def dead_letters(bus: Bus, batch_id: str = "") -> list[runtime_pb2.DeadLetter]:
    """The dead letters on the topic, one per id, in the order they came: a replayed one as its mark says."""
    by_id: dict[str, runtime_pb2.DeadLetter] = {}
    for value in bus.read_all(DEAD_LETTER):
        letter = runtime_pb2.DeadLetter.FromString(value)
        if letter.id not in by_id or letter.replayed_at_ms:
            by_id[letter.id] = letter
    letters = list(by_id.values())
    if batch_id:
        problems = {p.id for p in map(records_pb2.Problem.FromString, bus.read_all(topics.PROBLEMS))
                    if p.batch_id == batch_id}
        letters = [letter for letter in letters if letter.problem_id in problems]
    return letters


def _fixed_value(letter: runtime_pb2.DeadLetter, path: Path) -> bytes:
    """The record in `path` (JSON), parsed as the dead letter's declared type: a fix must still be that type."""
    try:
        message_type = message_factory.GetMessageClass(
            symbol_database.Default().pool.FindMessageTypeByName(letter.record_type))
    except KeyError:
        raise InvalidInput("--value-file", f"the dead letter declares no known record type ({letter.record_type!r})"
                           ) from None
    message: Message = message_type()
    try:
        json_format.Parse(path.read_text(encoding="utf-8"), message)
    except json_format.ParseError as exc:
        raise InvalidInput("--value-file", f"not a {letter.record_type} in JSON: {exc}") from None
    return message.SerializeToString()


def replay(bus: Bus, letter: runtime_pb2.DeadLetter, value: bytes | None = None, again: bool = False) -> None:
    """Puts the letter's record back on its topic, then marks the letter replayed (after the record is
    acknowledged: a mark never stands for a record that did not go)."""
    if letter.replayed_at_ms and not again:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(letter.replayed_at_ms / 1000))
        raise FailedPrecondition(f"dead letter {letter.id} was replayed at {when} UTC; replaying it again would put "
                                 "a second copy of its record on the topic (--again to do it anyway)")
    named = ((ID_HEADER, letter.record_id), (TYPE_HEADER, letter.record_type))
    headers = [(name, text.encode()) for name, text in named if text]
    bus.confirm([bus.send_raw(letter.source_topic, letter.problem_id.encode() or None,
                              letter.value if value is None else value, headers)])
    marked = runtime_pb2.DeadLetter()
    marked.CopyFrom(letter)
    marked.replayed_at_ms = int(time.time() * 1000)
    bus.publish([(DEAD_LETTER, marked)])


def _bus_settings(config: Path | None) -> BusSettings:
    """The `bus` section as a service would read it: `config` (a service's settings file: its other sections are
    not this command's), then LEARNERFIT_BUS__* over it."""
    class BusOnly(ServiceSettings):
        model_config = SettingsConfigDict(**{**ServiceSettings.model_config, "extra": "ignore"})

        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                       file_secret_settings):
            files = [YamlConfigSettingsSource(settings_cls, yaml_file=config)] if config else []
            return init_settings, env_settings, *files

    return BusOnly().bus


def _bus(args: argparse.Namespace) -> Bus:
    config = Path(args.bus_config) if args.bus_config else None
    if config is not None and not config.is_file():
        raise InvalidInput("--bus-config", f"{config}: no such file")
    if config is not None or any(name.startswith(f"{ENV_PREFIX}BUS__") for name in os.environ):
        bus = _bus_settings(config)
        return Bus(args.bootstrap_servers or bus.bootstrap_servers, client_id="learnerfit-cli",
                   topic_prefix=bus.topic_prefix, max_record_bytes=bus.max_record_bytes,
                   security=bus.client_security(), publish_timeout_s=bus.publish_timeout_s)
    servers = args.bootstrap_servers or StackState.load(Path(args.dir)).bootstrap_servers
    return Bus(servers, client_id="learnerfit-cli")


def cmd_dead_letters(args: argparse.Namespace) -> int:
    bus = _bus(args)
    try:
        letters = dead_letters(bus, args.batch or "")
        if args.replay:
            letter = next((d for d in letters if d.id == args.replay), None)
            if letter is None:
                raise NotFound(f"no dead letter {args.replay!r}; `learnerfit dead-letters` lists their ids")
            replay(bus, letter, _fixed_value(letter, Path(args.value_file)) if args.value_file else None,
                   again=args.again)
            say(f"replayed {letter.id} onto {letter.source_topic} (problem {letter.problem_id})")
            return 0
        if not letters:
            say("no dead letters" + (f" for batch {args.batch}" if args.batch else ""))
            return 0
        console.print(table(("id", "stage", "problem", "kind", "tries", "replayed"),
                            [(d.id, d.stage, d.problem_id, "transient" if d.transient else "bad record", d.attempts,
                              time.strftime("%Y-%m-%d %H:%M", time.gmtime(d.replayed_at_ms / 1000))
                              if d.replayed_at_ms else "-") for d in letters]))
        for letter in letters:  # whole, one per line: reasons are too long for a table cell
            console.print(f"{letter.id}: {letter.reason}", highlight=False, soft_wrap=True)
        say(f"{len(letters)} dead letters; `learnerfit dead-letters --replay ID` publishes one again")
        return 0
    finally:
        bus.close()


def register(commands, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("dead-letters", parents=[common],
                                 help="records the stages gave up on, with why; replay one")
    parser.add_argument("--bootstrap-servers", metavar="HOST:PORT",
                        help="the Kafka broker to read (default: the stack started by `up` in --dir, or the one "
                             "--bus-config or LEARNERFIT_BUS__BOOTSTRAP_SERVERS names)")
    parser.add_argument("--bus-config", metavar="YAML",
                        help="a service's settings file (e.g. a cluster's config.yaml): its `bus` section says "
                             "how to reach the brokers, TLS and SASL included; LEARNERFIT_BUS__* override it")
    parser.add_argument("--batch", help="only those of this batch's problems")
    parser.add_argument("--replay", metavar="ID", help="publish this dead letter's record again on its topic")
    parser.add_argument("--value-file", metavar="JSON", help="with --replay: publish this fixed record instead")
    parser.add_argument("--again", action="store_true", help="with --replay: replay a letter already replayed")
    parser.set_defaults(func=cmd_dead_letters)
