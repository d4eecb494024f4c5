"""Generation throughput: the generator service fed through the stream, against raw generate() calls.

Subject: problems published to a real Tansu broker, consumed by the generator
service (services.generator, built and run from its spec as the process runs it)
in this process, trajectories published back; timed from publish until every
trajectory is read back. Baselines, on the same weights and sampling settings:
(a) the limit: one raw model.generate() over all problems batched together;
(b) what most pipeline tools do: one raw model.generate() per problem.
Tokens are the completion tokens each produced (up to end-of-sequence).
"""

from __future__ import annotations

import time

import torch

from bench.common import Ratio, set_threads, timed
from learnerfit.domain import topics
from learnerfit.domain.batches import prepare_batch
from learnerfit.domain.intake import IntakeLimits, SamplingDefaults
from learnerfit.domain.problems import EASY_ARITHMETIC, from_reasoning_gym
from learnerfit.domain.prompts import learner_conversation
from learnerfit.local.broker import TansuBroker
from learnerfit.models.chat import render_prompt
from learnerfit.runtime.app import serving
from learnerfit.runtime.bus import Bus
from learnerfit.v1 import records_pb2, services_pb2
from services import generator

PROBLEMS = 8
SAMPLES = 4
MAX_NEW_TOKENS = 48


def run() -> list[Ratio]:
    set_threads()
    sampling = records_pb2.SamplingSpec(samples_per_problem=SAMPLES, temperature=0.7, top_p=1.0,
                                        max_new_tokens=MAX_NEW_TOKENS, seed=0)
    with TansuBroker() as broker:
        settings = generator.GeneratorSettings(
            bus={"bootstrap_servers": broker.bootstrap_servers, "topic_partitions": 1, "session_timeout_ms": 6000},
            grpc={"port": 0}, stage={"max_batch": PROBLEMS, "max_wait_s": 0.5},
            learner={"torch_threads": torch.get_num_threads()})
        bus = Bus(broker.bootstrap_servers, client_id="bench", session_timeout_ms=6000)
        with serving(generator.SPEC, settings) as service_under_test:
            reader = _Reader(bus, topics.TRAJECTORIES)
            try:
                # Warm-up through the same path: joins the consumer group, first generate() allocations.
                _through_stream(bus, reader, _problems(1, sampling, seed=99))
                problems = _problems(PROBLEMS, sampling, seed=0)
                service = timed("generator service via Kafka", lambda: _through_stream(bus, reader, problems))
            finally:
                reader.close()
                bus.close()
            _, backend = service_under_test.parts.process.learner.current()  # the same loaded weights
    model, tokenizer = backend.model, backend.tokenizer
    prompts = [render_prompt(tokenizer, learner_conversation(p)) for p in problems]
    eos = backend._eos_ids

    def raw(prompt_group: list[str]) -> int:
        encoded = tokenizer(prompt_group, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(0)
        with torch.inference_mode():
            out = model.generate(**encoded, do_sample=True, temperature=0.7, top_p=1.0, top_k=0,
                                 max_new_tokens=MAX_NEW_TOKENS, num_return_sequences=SAMPLES,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)
        generated = out[:, encoded["input_ids"].shape[1]:].tolist()
        return sum(next((i for i, t in enumerate(ids) if t in eos), len(ids)) for ids in generated)

    batched = timed(f"raw generate(), {PROBLEMS} problems per call", lambda: raw(prompts))
    per_problem = timed("raw generate(), 1 problem per call", lambda: sum(raw([p]) for p in prompts))
    return [
        Ratio("generation", service, batched, ">= 0.9"),
        Ratio("generation", service, per_problem, ""),
        Ratio("generation", batched, per_problem, ""),
    ]


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
