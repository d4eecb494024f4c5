"""`learnerfit dead-letters [--batch ID] [--replay ID [--value-file JSON]]`: what the stages gave up on, and
putting a record back.

Reads the `dead-letter` topic from the beginning: the local stack's, or any broker's
given `--bootstrap-servers`. Each dead letter
holds the record as it was read, so `--replay` publishes it again on the topic it
came from, under its own key and id: after a back end came back (a transient
failure), as it was; after fixing a bad record, with `--value-file` (the record as
JSON, in its protobuf type's field names).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from google.protobuf import json_format, message_factory, symbol_database
from google.protobuf.message import Message

from learnerfit.cli.output import console, say, table
from learnerfit.domain import topics
from learnerfit.errors import InvalidInput, NotFound
from learnerfit.local.stack import StackState
from learnerfit.runtime.app import DEAD_LETTER
from learnerfit.runtime.bus import ID_HEADER, TYPE_HEADER, Bus
from learnerfit.v1 import records_pb2, runtime_pb2


def dead_letters(bus: Bus, batch_id: str = "") -> list[runtime_pb2.DeadLetter]:
    letters = [runtime_pb2.DeadLetter.FromString(v) for v in bus.read_all(DEAD_LETTER)]
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


def replay(bus: Bus, letter: runtime_pb2.DeadLetter, value: bytes | None = None) -> None:
    named = ((ID_HEADER, letter.record_id), (TYPE_HEADER, letter.record_type))
    headers = [(name, text.encode()) for name, text in named if text]
    bus.send_raw(letter.source_topic, letter.problem_id.encode() or None,
                 letter.value if value is None else value, headers).get(timeout=30)


def cmd_dead_letters(args: argparse.Namespace) -> int:
    servers = args.bootstrap_servers or StackState.load(Path(args.dir)).bootstrap_servers
    bus = Bus(servers, client_id="learnerfit-cli")
    try:
        letters = dead_letters(bus, args.batch or "")
        if args.replay:
            letter = next((d for d in letters if d.id == args.replay), None)
            if letter is None:
                raise NotFound(f"no dead letter {args.replay!r}; `learnerfit dead-letters` lists their ids")
            replay(bus, letter, _fixed_value(letter, Path(args.value_file)) if args.value_file else None)
            say(f"replayed {letter.id} onto {letter.source_topic} (problem {letter.problem_id})")
            return 0
        if not letters:
            say("no dead letters" + (f" for batch {args.batch}" if args.batch else ""))
            return 0
        console.print(table(("id", "stage", "problem", "kind", "tries"),
                            [(d.id, d.stage, d.problem_id, "transient" if d.transient else "bad record", d.attempts)
                             for d in letters]))
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
                        help="the Kafka broker to read (default: the stack started by `up` in --dir)")
    parser.add_argument("--batch", help="only those of this batch's problems")
    parser.add_argument("--replay", metavar="ID", help="publish this dead letter's record again on its topic")
    parser.add_argument("--value-file", metavar="JSON", help="with --replay: publish this fixed record instead")
    parser.set_defaults(func=cmd_dead_letters)
