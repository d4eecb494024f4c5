"""A stream's Oracle budget shared out over its batches."""

from __future__ import annotations

from learnerfit.domain.oracle.spend import StreamBudget
from learnerfit.v1 import records_pb2


def _status(batch_id: str, tokens: int, cost: float, complete: bool) -> records_pb2.BatchStatus:
    return records_pb2.BatchStatus(
        batch_id=batch_id, state=records_pb2.BATCH_STATE_COMPLETE if complete else records_pb2.BATCH_STATE_RUNNING,
        oracle_spend=[records_pb2.OracleSpend(prompt_tokens=tokens - 10, completion_tokens=10, cost_usd=cost)])


def test_each_batch_of_a_stream_gets_what_is_left_less_what_running_batches_may_still_spend():
    stream = StreamBudget(records_pb2.OracleBudget(max_tokens=1000, max_cost_usd=1.0))
    first = stream.next_batch()
    assert (first.max_tokens, first.max_cost_usd) == (1000, 1.0)
    stream.submitted("a", first)
    stream.update(_status("a", 300, 0.25, complete=False))
    held = stream.next_batch()  # "a" is running: its whole cap is still its to spend
    assert (held.max_tokens, held.max_cost_usd) == (0, 0.0)
    stream.update(_status("a", 300, 0.25, complete=True))
    second = stream.next_batch()  # finished: only what it spent counts
    assert (second.max_tokens, second.max_cost_usd) == (700, 0.75)
    stream.submitted("b", second)
    stream.update(_status("b", 720, 0.5, complete=True))  # past its cap by what it had in flight
    assert stream.next_batch().max_tokens == 0 and stream.spent() == (1020, 0.75)


def test_a_tokens_only_cap_leaves_cost_uncapped():
    stream = StreamBudget(records_pb2.OracleBudget(max_tokens=50))
    assert not stream.next_batch().HasField("max_cost_usd")

