"""Prometheus metrics shared by every service: stage throughput, dead letters, gRPC calls."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

RECORDS_IN = Counter("learnerfit_stage_records_in_total", "Input records a stage consumed.", ["stage"])
RECORDS_OUT = Counter("learnerfit_stage_records_out_total", "Output records a stage published.", ["stage", "topic"])
DUPLICATES = Counter("learnerfit_stage_duplicates_total", "Redelivered input records dropped as duplicates.", ["stage"])
RETRIES = Counter("learnerfit_stage_retries_total", "Retries of a batch after a transient failure.", ["stage"])
DEAD_LETTERS = Counter("learnerfit_stage_dead_letters_total", "Records sent to the dead-letter topic.", ["stage"])
STAGE_LATENCY = Histogram(
    "learnerfit_stage_batch_seconds",
    "Time to process one batch of input records (model work included).",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
STATE_SIZE = Gauge("learnerfit_state_entries", "Entries a service holds in memory, by what they are; each is bounded "
                   "by a setting.", ["service", "what"])
GRPC_CALLS = Counter("learnerfit_grpc_calls_total", "gRPC calls served.", ["method", "code"])
ORACLE_OUTPUTS = Counter("learnerfit_oracle_outputs_total", "Oracle outputs accepted.", ["service", "origin"])
ORACLE_REJECTIONS = Counter("learnerfit_oracle_rejections_total", "Oracle outputs a guardrail rejected.",
                            ["service", "origin", "reason"])
ORACLE_TOKENS = Counter("learnerfit_oracle_tokens_total", "Tokens Oracle outputs took, by model, mode, outcome "
                        "(accepted, or the guardrail that rejected it) and kind (prompt, completion, cached: of "
                        "prompt, served from the provider's cache).", ["service", "model", "mode", "outcome", "kind"])
ORACLE_COST = Counter("learnerfit_oracle_cost_usd_total", "What Oracle outputs cost, in USD (models with a price: "
                      "setting oracle.prices).", ["service", "model", "mode", "outcome"])
GRPC_LATENCY = Histogram("learnerfit_grpc_call_seconds", "gRPC call latency.", ["method"])


def oracle_outcomes(service: str) -> Callable[..., None]:
    """Counts each Oracle output of `service` by its origin, each rejection by its guardrail, and what each took
    (tokens by kind; cost where the model has a price) by model, mode and outcome."""
    def count(origin: str, rejected_by: str | None, *, model: str = "", mode: str = "",
              tokens: Mapping[str, int] | None = None, cost_usd: float | None = None) -> None:
        if rejected_by is None:
            ORACLE_OUTPUTS.labels(service, origin).inc()
        else:
            ORACLE_REJECTIONS.labels(service, origin, rejected_by).inc()
        outcome = rejected_by or "accepted"
        for kind, value in (tokens or {}).items():
            ORACLE_TOKENS.labels(service, model, mode, outcome, kind).inc(value)
        if cost_usd is not None:
            ORACLE_COST.labels(service, model, mode, outcome).inc(cost_usd)

    return count


def watch_state(service: str, sizes: Callable[[], dict[str, int]]) -> None:
    """Exports what `sizes` reports (read at scrape time) as learnerfit_state_entries."""
    for what in sizes():
        STATE_SIZE.labels(service, what).set_function(lambda what=what: sizes().get(what, 0))


def serve_metrics(port: int) -> int | None:
    """Starts the /metrics endpoint; returns its port (None when disabled with -1)."""
    if port < 0:
        return None
    server, _thread = start_http_server(port)
    bound = server.server_port
    log.info("metrics on :%d/metrics", bound)
    return bound
