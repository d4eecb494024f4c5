"""Small helpers on the shared records: readable names of enum values, steps of a solution, keys and ids."""

from __future__ import annotations

from google.protobuf.message import Message

from learnerfit.v1 import records_pb2

_PREFIXES = {records_pb2.Origin: "ORIGIN_", records_pb2.Verdict: "VERDICT_", records_pb2.OracleMode: "ORACLE_MODE_",
             records_pb2.CheckpointKind: "CHECKPOINT_KIND_", records_pb2.BatchState: "BATCH_STATE_",
             records_pb2.PromotionState: "PROMOTION_STATE_"}


def enum_name(enum, value: int) -> str:
    """ORIGIN_LEARNER_SAMPLE -> "learner_sample": the name used in exports, logs and the CLI."""
    return enum.Name(value).removeprefix(_PREFIXES[enum]).lower()


def enum_value(enum, name: str) -> int:
    """The inverse of enum_name: "learner_sample" -> ORIGIN_LEARNER_SAMPLE."""
    return enum.Value(_PREFIXES[enum] + name.upper())


def origin_name(origin: int) -> str:
    return enum_name(records_pb2.Origin, origin)


def verdict_name(verdict: int) -> str:
    return enum_name(records_pb2.Verdict, verdict)


def mode_name(mode: int) -> str:
    return enum_name(records_pb2.OracleMode, mode)


def split_steps(text: str) -> list[str]:
    """A solution's steps: its non-empty lines (the learner writes one step per line)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def copied(message: Message) -> Message:
    """A deep copy, so a stage never changes the record it was handed."""
    copy = type(message)()
    copy.CopyFrom(message)
    return copy
