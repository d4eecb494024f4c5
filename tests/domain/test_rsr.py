"""The rank-surprisal ratio as Yang et al. publish it (arXiv 2601.14249, their rsr_cal.py): ranks clipped at 100,
per trace summed ranks over summed NLL, per set mean rank over mean NLL; lower is better data."""

from __future__ import annotations

import math

import pytest

from learnerfit.domain.drift import drift_scores, set_rsr
from learnerfit.domain.inference import SolutionLogProbs
from learnerfit.v1 import records_pb2


def test_a_traces_rsr_clips_ranks_at_100_and_divides_the_sums():
    scored = SolutionLogProbs(token_ids=[1, 2, 3], tokens=["a", "b", "c"], logprobs=[-0.5, -1.5, -1.0],
                              ranks=[1, 250, 3])
    scores = drift_scores(scored, top_tokens=2)
    assert scores.mean_token_rank == pytest.approx((1 + 100 + 3) / 3)
    assert scores.rsr == pytest.approx((1 + 100 + 3) / 3.0)


def test_a_sets_rsr_is_mean_rank_over_mean_nll_so_one_certain_trace_cannot_blow_it_up():
    scores = [records_pb2.Scores(mean_token_rank=4.0, ppl=math.exp(2.0)),
              records_pb2.Scores(mean_token_rank=2.0, ppl=math.exp(0.001)),  # predicted almost with certainty
              records_pb2.Scores(ppl=1.5)]  # no ranks (a back end that does not rank): left out
    assert set_rsr(scores) == pytest.approx(3.0 / 1.0005)
    assert set_rsr([records_pb2.Scores(ppl=2.0)]) is None
