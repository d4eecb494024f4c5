"""End-to-end overhead: one batch through the whole local stack, against the time its models ran.

The stack is `learnerfit run`'s (Tansu and every service as its own process, SmolLM2 as
the learner, the reward model, the rule-based teacher as Oracle). Each service exports
learnerfit_model_seconds_total (models/timing.py: measured around the engine call); the
benchmark scrapes every service's /metrics every POLL_S while the batch runs. A counter
rises when a call ends, by the call's length, so each rise marks a busy interval ending at
the scrape. Model time is the union of those intervals over all services: the time some
model was computing. The rest of the wall time, from submit to the batch complete, is what
the pipeline costs beyond its models (the bus, batching waits, gRPC, curation). Stages
overlap when the drift scorer's first model interval starts before the generator's last
one ends. BENCH_PIPE_MODEL, BENCH_PIPE_PROBLEMS and BENCH_PIPE_TOKENS shrink it for a smoke run.
"""

from __future__ import annotations

import os
import tempfile
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from bench.common import Measured, Ratio
from learnerfit.cli import build_parser
from learnerfit.cli.batches import submit_request
from learnerfit.cli.output import follow_batch
from learnerfit.cli.stack import make_stack, prepare_models
from learnerfit.local.processes import channel
from learnerfit.catalog import CATALOG
from learnerfit.models.settings import SMOLLM2
from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc

MODEL = os.environ.get("BENCH_PIPE_MODEL", SMOLLM2)
PROBLEMS = int(os.environ.get("BENCH_PIPE_PROBLEMS", "16"))
SAMPLES = 4
MAX_NEW_TOKENS = int(os.environ.get("BENCH_PIPE_TOKENS", "64"))
POLL_S = 0.2
# The model stages a batch flows through: the stateless ones (the trainer's model runs between batches).
MODEL_STAGES = tuple(s.name for s in CATALOG if s.pod.model and s.pod.scale_on_lag)


def run() -> list[Ratio]:
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as directory:
        args = build_parser().parse_args([
            "run", "--dir", directory, "--model", MODEL, "--count", str(PROBLEMS), "--samples", str(SAMPLES),
            "--max-new-tokens", str(MAX_NEW_TOKENS), "--registry", f"{directory}/registry"])
        prepare_models(args.model)
        with make_stack(args) as stack:
            gateway = services_pb2_grpc.GatewayStub(channel(stack.state.gateway))
            # Warm-up: the consumer groups settle and each model makes its first call (start-up, not per batch).
            warm_up = submit_request(args, seed_offset=1000)
            del warm_up.problems[1:]
            _follow(gateway, gateway.SubmitBatch(warm_up).batch_id, stack.check_alive)
            scrapers = {name: f"http://127.0.0.1:{process.metrics_port}/metrics"
                        for name, process in stack.state.services.items() if name in MODEL_STAGES}
            baseline = {name: _model_seconds(url) for name, url in scrapers.items()}
            busy: dict[str, list[tuple[float, float]]] = {name: [] for name in scrapers}
            last = dict(baseline)
            request = submit_request(args)
            started = time.monotonic()

            def scrape() -> None:
                now = time.monotonic() - started
                for name, url in scrapers.items():
                    seconds = _model_seconds(url)
                    if seconds > last[name]:
                        busy[name].append((max(0.0, now - (seconds - last[name])), now))
                        last[name] = seconds

            status = _follow(gateway, gateway.SubmitBatch(request).batch_id, lambda: (stack.check_alive(), scrape()))
            scrape()  # a call that ended after the last poll's scrape
            wall = time.monotonic() - started
    model = _union([interval for intervals in busy.values() for interval in intervals])
    tokens = status.samples_generated
    per_stage = ", ".join(f"{name} {last[name] - baseline[name]:.1f}s in {busy[name][0][0]:.1f}-"
                          f"{busy[name][-1][1]:.1f}s" for name in scrapers if busy[name])
    generating, scoring = busy.get("generator", []), busy.get("drift_scorer", [])
    overlap = bool(generating and scoring and scoring[0][0] < generating[-1][1])
    print(f"  pipeline: {PROBLEMS} problems x {SAMPLES} samples, {MAX_NEW_TOKENS} tokens, batch {wall:.1f}s wall, "
          f"model time {model:.1f}s (union over stages; per stage: {per_stage}); not model time "
          f"{100 * (1 - model / wall):.1f}% of wall (target <= 10%); drift scoring "
          f"{'overlaps' if overlap else 'does NOT overlap'} generation"
          + (f" (scoring from {scoring[0][0]:.1f}s, generation until {generating[-1][1]:.1f}s)" if overlap else ""),
          flush=True)
    # As a ratio: samples per second of wall time over samples per second of model time (1.0: no overhead).
    return [Ratio("pipeline", Measured("batch, wall time", tokens, wall, "samples"),
                  Measured("the same batch, model time only", tokens, model, "samples"), ">= 0.9")]


def _follow(gateway, batch_id: str, check) -> records_pb2.BatchStatus:
    """The CLI's progress follower, polling every POLL_S with `check` before each poll."""
    return follow_batch(lambda: gateway.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id)), 3600,
                        time.monotonic(), check, interval_s=POLL_S)


def _model_seconds(url: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text)
               if family.name == "learnerfit_model_seconds" for sample in family.samples
               if sample.name == "learnerfit_model_seconds_total")


def _union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total
