"""Wiring both Oracle services share: the Oracle back end, the answer checker, the routing of rejects."""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.message import Message

from learnerfit.v1 import records_pb2
from services.backends.base import SamplingParams
from services.backends.factory import make_text_generator
from services.oracle.writer import OracleWriter, is_rejected
from services.reward_scorer.answers import AnswerChecker


def oracle_writer(service: str, settings) -> tuple[OracleWriter, AnswerChecker]:
    checker = AnswerChecker(timeout_s=settings.check_timeout_s)
    checker.warm_up()
    params = SamplingParams(n=1, temperature=settings.oracle_temperature, max_new_tokens=settings.oracle_max_new_tokens,
                            seed=settings.oracle_seed)
    return OracleWriter(service, make_text_generator(settings), checker, params, settings.min_overlap), checker


def rejected_router(rejected_topic: str) -> Callable[[Message], str | None]:
    """Rejected outputs to their own topic: kept and explained, but never scored or curated."""
    return lambda m: rejected_topic if isinstance(m, records_pb2.Trajectory) and is_rejected(m) else None
