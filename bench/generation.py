"""Useful generation throughput: the generator service fed through the stream, against raw generate() calls.

Useful tokens are the tokens a sample keeps, up to and including its end-of-sequence
token; decode slots wasted on a row that has already ended count for nothing. Subject:
problems published to a real Tansu broker, consumed by the generator service
(services.generator, built from its spec as the process runs it) in this process, all in
one stage batch, trajectories published back; timed from publish until every trajectory
is read back. Baselines on the same weights, problems, N, temperature, token cap and
prompts: (a) one raw padded model.generate() over all rows; (b) what common
data-generation tools do: one raw generate() per problem with num_return_sequences=N.
A sweep over the decoder's slot count (models/slots.py, called directly) picks the
default. BENCH_GEN_MODEL, BENCH_GEN_PROBLEMS, BENCH_GEN_TOKENS and BENCH_GEN_SLOTS (a
comma list) shrink it for a smoke run.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import torch

from bench.common import Ratio, set_threads, timed
from learnerfit.domain import topics
from learnerfit.domain.batches import prepare_batch
from learnerfit.domain.inference import SamplingParams, row_seed
from learnerfit.domain.intake import IntakeLimits, SamplingDefaults
from learnerfit.domain.problems import EASY_ARITHMETIC, from_reasoning_gym
from learnerfit.domain.prompts import learner_conversation
from learnerfit.local.broker import TansuBroker
from learnerfit.models.chat import render_prompt
from learnerfit.models.settings import SMOLLM2
from learnerfit.models.slots import SlotDecoder
from learnerfit.runtime.app import serving
from learnerfit.runtime.bus import Bus
from learnerfit.v1 import records_pb2, services_pb2
from services import generator

MODEL = os.environ.get("BENCH_GEN_MODEL", SMOLLM2)
PROBLEMS = int(os.environ.get("BENCH_GEN_PROBLEMS", "16"))
SAMPLES = 4
MAX_NEW_TOKENS = int(os.environ.get("BENCH_GEN_TOKENS", "64"))  # the CLI's default cap
SLOT_SWEEP = [int(s) for s in os.environ.get("BENCH_GEN_SLOTS", "8,16,32,64").split(",")]


@dataclass
class Decoded:
    """Useful tokens and the decode slots computed to get them."""

    kept: int
    slots: int

    @property
    def share(self) -> str:
        return f"{100 * self.kept / self.slots:.0f}% of slots useful"


def run() -> list[Ratio]:
    set_threads()
    sampling = records_pb2.SamplingSpec(samples_per_problem=SAMPLES, temperature=0.7, top_p=1.0,
                                        max_new_tokens=MAX_NEW_TOKENS, seed=0)
    with TansuBroker() as broker:
        settings = generator.GeneratorSettings(
            bus={"bootstrap_servers": broker.bootstrap_servers, "topic_partitions": 1, "session_timeout_ms": 6000},
            grpc={"port": 0}, stage={"max_batch": PROBLEMS, "max_wait_s": 0.5},
            learner={"model": MODEL, "torch_threads": torch.get_num_threads()})
        bus = Bus(broker.bootstrap_servers, client_id="bench", session_timeout_ms=6000)
        with serving(generator.SPEC, settings) as service_under_test:
            service_under_test.wait_ready()
            reader = _Reader(bus, topics.TRAJECTORIES)
            try:
                # Warm-up through the same path: joins the consumer group, first allocations.
                _through_stream(bus, reader, _problems(1, sampling, seed=99))
                _, backend = service_under_test.parts.stage.process.learner.current()  # the same loaded weights
                before = replace(backend.decoder.stats)
                problems = _problems(PROBLEMS, sampling, seed=0)
                service = timed(f"generator service via Kafka, {backend.decoder.slots} slots",
                                lambda: _through_stream(bus, reader, problems))
                stats = backend.decoder.stats
                service_slots = Decoded(stats.kept_tokens - before.kept_tokens, stats.slot_steps - before.slot_steps)
                full = (stats.decode_rows - before.decode_rows) / max(
                    1, (stats.decode_passes - before.decode_passes) * backend.decoder.slots)
            finally:
                reader.close()
                bus.close()
    model, tokenizer, eos = backend.model, backend.tokenizer, backend._eos_ids
    prompts = [render_prompt(tokenizer, learner_conversation(p)) for p in problems]
    params = SamplingParams(n=SAMPLES, temperature=0.7, top_p=1.0, max_new_tokens=MAX_NEW_TOKENS, seed=0)

    def raw(prompt_group: list[str], tally: Decoded) -> int:
        encoded = tokenizer(prompt_group, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(0)
        with torch.inference_mode():
            out = model.generate(**encoded, do_sample=True, temperature=0.7, top_p=1.0, top_k=0,
                                 max_new_tokens=MAX_NEW_TOKENS, num_return_sequences=SAMPLES,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)
        generated = out[:, encoded["input_ids"].shape[1]:].tolist()
        kept = sum(next((i + 1 for i, t in enumerate(ids) if t in eos), len(ids)) for ids in generated)
        tally.kept += kept
        tally.slots += len(generated) * len(generated[0])  # every row ran every decode step of the call
        return kept

    padded_slots, per_problem_slots = Decoded(0, 0), Decoded(0, 0)
    padded = timed("raw generate(), all rows padded", lambda: raw(prompts, padded_slots))
    per_problem = timed("raw generate(), 1 problem per call", lambda: sum(raw([p], per_problem_slots)
                                                                         for p in prompts))
    _label(service, service_slots)
    service.name = service.name[:-1] + f", {100 * full:.0f}% full]"
    _label(padded, padded_slots)
    _label(per_problem, per_problem_slots)
    ratios = [Ratio("generation", service, padded, ">= 1.5"), Ratio("generation", service, per_problem, ">= 2.5"),
              Ratio("generation", padded, per_problem, "")]

    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    rows = [(row, row_seed(prompt, params.seed, k)) for prompt, row in zip(prompts, ids, strict=True)
            for k in range(SAMPLES)]
    for slots in SLOT_SWEEP:  # the sweep the default (LearnerSettings.max_batch_sequences) is picked from
        decoder = SlotDecoder(model, eos_ids=eos, pad_id=tokenizer.pad_token_id, slots=slots)
        swept = timed(f"slot decoder, {slots} slots",
                      lambda decoder=decoder: sum(len(o) for o in decoder.decode([r for r, _ in rows],
                                                                                 [s for _, s in rows], params)))
        swept.name += f" [{100 * decoder.stats.occupancy(slots):.0f}% full]"
        ratios.append(Ratio("gen. sweep", swept, padded, ""))
    return ratios


def _label(measured, decoded: Decoded) -> None:
    measured.name += f" [{decoded.share}]"


def _problems(count: int, sampling: records_pb2.SamplingSpec, seed: int) -> list[records_pb2.Problem]:
    request = services_pb2.SubmitBatchRequest(problems=from_reasoning_gym("basic_arithmetic", count, seed,
                                                                          EASY_ARITHMETIC), sampling=sampling)
    # Ids and sampling exactly as the gateway sets them.
    _, problems = prepare_batch(request, IntakeLimits(), SamplingDefaults(), "rejection_sampling")
    return problems


def _through_stream(bus: Bus, reader: _Reader, problems) -> int:
    bus.publish((topics.PROBLEMS, problem) for problem in problems)
    wanted = {p.id for p in problems}
    tokens, seen = 0, 0
    deadline = time.monotonic() + 1800
    while seen < len(problems) * SAMPLES:
        if time.monotonic() > deadline:
            raise TimeoutError("generator bench: trajectories did not arrive")
        for trajectory in reader.poll():
            if trajectory.problem.id in wanted:
                tokens += trajectory.completion_tokens
                seen += 1
    return tokens


class _Reader:
    def __init__(self, bus: Bus, topic: str):
        from kafka import TopicPartition

        self.consumer = bus.reader()
        partition = TopicPartition(topic, 0)
        self.consumer.assign([partition])
        self.consumer.seek_to_beginning(partition)

    def poll(self) -> list[records_pb2.Trajectory]:
        return [records_pb2.Trajectory.FromString(r.value)
                for batch in self.consumer.poll(timeout_ms=200).values() for r in batch]

    def close(self) -> None:
        self.consumer.close()
