"""Drift scoring throughput: the drift scorer service (over gRPC) against two baselines on the same tokens.

(a) a naive loop: one unbatched forward pass with full logits per trace;
(b) the limit: raw batched forward passes of the same model (full logits, right
padding, 16 sequences per pass, traces in their given order).
All three score the same solution tokens after the same chat-templated prompts.
"""

from __future__ import annotations

import os
import random

import torch

from bench.common import Ratio, set_threads, timed
from learnerfit.domain.prompts import learner_conversation
from learnerfit.local.broker import TansuBroker
from learnerfit.local.processes import channel
from learnerfit.models.chat import encode_reply
from learnerfit.models.settings import SMOLLM2
from learnerfit.runtime.app import Service, serving
from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services import drift_scorer

MODEL = os.environ.get("BENCH_DRIFT_MODEL", SMOLLM2)
TRACES = int(os.environ.get("BENCH_DRIFT_TRACES", "32"))
RAW_BATCH = 16


def traces(count: int, seed: int = 0) -> list[records_pb2.Trajectory]:
    """Solutions of mixed style and length: learner-like step lists and Oracle-like LaTeX prose."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        a, b = rng.randint(1, 40), rng.randint(1, 40)
        steps = "\n".join(f"{a + k} + {b} = {a + k + b}" for k in range(rng.randint(1, 8)))
        learner = f"{steps}\nFinal answer: {a + b}"
        oracle = (f"We evaluate ${a} + {b}$ step by step. " * rng.randint(1, 4)
                  + f"Thus $$ {a} + {b} = {a + b} $$ and the answer is $\\boxed{{{a + b}}}$.")
        problem = records_pb2.Problem(id=f"p{i}", question=f"Calculate {a} + {b}.", reference_answer=str(a + b))
        out.append(records_pb2.Trajectory(id=f"t{i}", problem=problem, text=learner if i % 2 else oracle))
    return out


def run() -> list[Ratio]:
    set_threads()
    with TansuBroker() as broker:
        # The drift scorer exactly as its process runs it (stage loop and checkpoint follower included).
        settings = drift_scorer.DriftScorerSettings(
            bus={"bootstrap_servers": broker.bootstrap_servers, "session_timeout_ms": 6000},
            grpc={"port": 0, "max_message_bytes": 64 << 20},
            learner={"model": MODEL, "torch_threads": torch.get_num_threads()})
        with serving(drift_scorer.SPEC, settings) as service_under_test:
            service_under_test.wait_ready()
            return _measure(service_under_test)


def _measure(service_under_test: Service) -> list[Ratio]:
    followed = service_under_test.parts.fold.__self__  # the followed learner: its announce() is the spec's fold
    _, scorer = followed.current()  # the same loaded weights
    model, tokenizer = scorer.model, scorer.tokenizer
    batch = traces(TRACES)
    encoded = [encode_reply(tokenizer, learner_conversation(t.problem), t.text) for t in batch]
    solution_tokens = sum(len(s) for _, s in encoded)

    def service() -> int:
        with channel(service_under_test.target) as ch:
            reply = services_pb2_grpc.DriftScorerStub(ch).ScoreDrift(
                services_pb2.ScoreDriftRequest(trajectories=batch), timeout=3600)
        return sum(t.scores.token_count for t in reply.trajectories)

    def naive() -> int:
        with torch.inference_mode():
            for prompt, solution in encoded:
                ids = torch.tensor([prompt + solution])
                logprobs = torch.log_softmax(model(input_ids=ids).logits[0], dim=-1)
                positions = torch.arange(len(prompt) - 1, len(prompt) - 1 + len(solution))
                logprobs[positions, torch.tensor(solution)].sum().item()
        return solution_tokens

    def raw_batched() -> int:
        with torch.inference_mode():
            for start in range(0, len(encoded), RAW_BATCH):
                chunk = encoded[start : start + RAW_BATCH]
                width = max(len(p) + len(s) for p, s in chunk)
                ids = torch.full((len(chunk), width), tokenizer.pad_token_id)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, (p, s) in enumerate(chunk):
                    ids[row, : len(p) + len(s)] = torch.tensor(p + s)
                    mask[row, : len(p) + len(s)] = 1
                logprobs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits, dim=-1)
                for row, (p, s) in enumerate(chunk):
                    positions = torch.arange(len(p) - 1, len(p) - 1 + len(s))
                    logprobs[row, positions, torch.tensor(s)].sum().item()
        return solution_tokens

    service()  # warm-up: first calls pay one-off allocation costs
    measured_service = timed("drift scorer service (gRPC)", service)
    measured_naive = timed("naive per-trace loop", naive)
    measured_raw = timed(f"raw batched forward (bs {RAW_BATCH})", raw_batched)
    assert measured_service.tokens == solution_tokens
    return [
        Ratio("drift", measured_service, measured_raw, ">= 0.9"),
        Ratio("drift", measured_service, measured_naive, ""),  # >= 3 is a GPU target; on CPU reported only
    ]

