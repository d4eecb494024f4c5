"""Gateway: accepts batches of problems over gRPC, publishes them, reports progress and streams curated results.

It keeps no state of its own: progress is folded from the pipeline's topics, read
from the beginning, so a restarted gateway arrives at the same counts. It follows the
dead-letter topic too, so a problem a stage gave up on settles its batch as failed,
with the reason, instead of leaving it running.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field, model_validator

from learnerfit.domain import topics
from learnerfit.domain.batches import BatchLedger, prepare_batch
from learnerfit.domain.curation.policies import DEFAULT_POLICY
from learnerfit.domain.ids import check_name
from learnerfit.domain.intake import IntakeLimits, SamplingDefaults
from learnerfit.errors import InvalidInput, LimitExceeded, NotFound, Unavailable
from learnerfit.runtime.app import DEAD_LETTER, run
from learnerfit.runtime.bus import PublishError
from learnerfit.runtime.faults import pause_point
from learnerfit.runtime.grpc import call_active
from learnerfit.runtime.metrics import watch_state
from learnerfit.runtime.settings import ServiceSettings
from learnerfit.runtime.spec import Context, Parts, ServiceSpec
from learnerfit.v1 import records_pb2, runtime_pb2, services_pb2

log = logging.getLogger(__name__)


class GatewaySettings(ServiceSettings):
    """Gateway: accepts batches of problems over gRPC, publishes them, reports progress and curated results."""

    service_name: ClassVar[str] = "gateway"
    default_policy: str = Field(DEFAULT_POLICY, description="Curation policy of batches that name none.")
    stream_idle_s: float = Field(1.0, gt=0, description="How often a results stream re-checks a quiet batch.")
    max_streams: int = Field(0, ge=0, description="Most StreamResults calls open at once; more are refused "
                                                  "(RESOURCE_EXHAUSTED), so streams never take every gRPC worker. "
                                                  "0: grpc.workers - 2.")
    keep_finished_batches: int = Field(1000, ge=1, description="Finished batches kept for GetBatch and "
                                                               "StreamResults; older ones are let go.")
    max_live_batches: int = Field(10_000, ge=1, description="Most batches running at once; SubmitBatch is refused "
                                                            "(RESOURCE_EXHAUSTED) past it, so memory stays bounded "
                                                            "when the pipeline falls behind.")
    keep_finished_bytes: int = Field(256 * 2**20, ge=1, description="Most memory (about: records kept whole, a fixed "
                                                                     "cost per counted one) the finished batches "
                                                                     "keep; the oldest are let go past it.")
    orphan_after_s: float = Field(600.0, gt=0, description="A batch none of whose problems is on the topic (they "
                                  "expired; its decisions stay on their compacted topic) is forgotten this long "
                                  "after its last record; those found at start, once the topics are read back.")
    max_live_bytes: int = Field(1024 * 2**20, ge=1, description="Most memory (about) the running batches hold; "
                                                                 "SubmitBatch is refused (RESOURCE_EXHAUSTED) past "
                                                                 "it, whatever their number.")
    sampling: SamplingDefaults = SamplingDefaults()
    intake: IntakeLimits = IntakeLimits()

    @model_validator(mode="after")
    def _streams_leave_workers(self) -> GatewaySettings:
        if not self.max_streams:
            self.max_streams = max(1, self.grpc.workers - 2)
        if self.max_streams >= self.grpc.workers:
            raise ValueError(f"max_streams ({self.max_streams}) must be below grpc.workers ({self.grpc.workers}), "
                             "or open streams could take every worker and SubmitBatch/GetBatch would hang")
        return self


def build(settings: GatewaySettings, context: Context) -> Parts:
    ledger = BatchLedger(settings.keep_finished_batches, settings.keep_finished_bytes)
    watch_state("gateway", ledger.sizes)
    streams = threading.BoundedSemaphore(settings.max_streams)
    admitting = threading.Lock()

    def status(batch_id: str) -> records_pb2.BatchStatus:
        if not batch_id:
            raise InvalidInput("batch_id", "must not be empty")
        check_name(batch_id, "batch_id")
        found = ledger.status(batch_id)
        if found is None:
            if ledger.forgotten(batch_id):
                raise NotFound(f"batch_id: batch {batch_id!r} finished and was let go (the gateway keeps the last "
                               f"{settings.keep_finished_batches} finished batches, setting keep_finished_batches)")
            raise NotFound(f"batch_id: no batch {batch_id!r}")
        return found

    def submit(request: services_pb2.SubmitBatchRequest) -> services_pb2.SubmitBatchResponse:
        batch_id, problems = prepare_batch(request, settings.intake, settings.sampling, settings.default_policy)
        reply = services_pb2.SubmitBatchResponse(batch_id=batch_id, problem_ids=[p.id for p in problems])
        with admitting:  # one admission at a time: the live-batch bound holds under concurrent submissions
            if ledger.holds_all(batch_id, list(reply.problem_ids)):
                reply.already_submitted = True
            else:
                sizes = ledger.sizes()
                if not ledger.knows(batch_id) and sizes["live_batches"] >= settings.max_live_batches:
                    raise LimitExceeded(f"{sizes['live_batches']} batches are running, the most this gateway takes "
                                        "(setting max_live_batches); retry once some have finished")
                if not ledger.knows(batch_id) and sizes["live_bytes"] >= settings.max_live_bytes:
                    raise LimitExceeded(f"the running batches hold about {sizes['live_bytes']} bytes, the most this "
                                        "gateway keeps (setting max_live_bytes); retry once some have finished")
                try:
                    context.bus.publish(((topics.PROBLEMS, p) for p in problems),
                                        timeout_s=context.bus.publish_timeout_s)
                except PublishError as exc:
                    # Nothing is recorded as accepted: the client's retry publishes every problem again (a batch
                    # is whole or not submitted), and the problems' stable ids let the generator drop any that
                    # did get through.
                    raise Unavailable(f"the broker did not take the batch within {context.bus.publish_timeout_s:g}"
                                      f" s (setting bus.publish_timeout_s), retry: {exc}") from exc
                pause_point("gateway.published")  # a fault trial's moment: published, the client not answered
                for problem in problems:
                    ledger.apply(problem)
                log.info("accepted batch %s with %d problems", batch_id, len(problems), extra={"batch_id": batch_id})
        reply.status.CopyFrom(status(batch_id))
        return reply

    def stream_results(request: services_pb2.StreamResultsRequest) -> Iterator[records_pb2.CuratedExample]:
        status(request.batch_id)
        if not streams.acquire(blocking=False):
            raise LimitExceeded(f"{settings.max_streams} result streams are open, the most this gateway serves at "
                                "once (setting max_streams); retry later or poll GetBatch")
        try:
            sent = 0
            while call_active():  # a client that went away frees its worker within stream_idle_s
                examples, complete = ledger.curated_from(request.batch_id, sent)
                yield from examples
                sent += len(examples)
                if complete and not examples:
                    return
                if not examples:
                    ledger.wait(settings.stream_idle_s)
        finally:
            streams.release()

    def drop_orphans(stop: threading.Event) -> None:
        """Batches whose problems expired can never finish: forgotten, so they hold no memory. At start, once the
        topics are read back (before, a problem may just not be read yet); then those quiet for orphan_after_s."""
        while not context.caught_up():
            if stop.wait(0.2):
                return
        older_than_s = 0.0
        while not stop.is_set():
            dropped = ledger.drop_orphans(older_than_s)
            if dropped:
                log.info("forgot %d batches none of whose problems is on the topic (expired)", dropped)
            older_than_s = settings.orphan_after_s
            stop.wait(min(60.0, settings.orphan_after_s))

    return Parts(rpcs={"SubmitBatch": submit, "GetBatch": lambda request: status(request.batch_id),
                       "StreamResults": stream_results}, fold=ledger.apply, background=[drop_orphans])


SPEC = ServiceSpec(
    name="gateway", settings=GatewaySettings, api=services_pb2.DESCRIPTOR.services_by_name["Gateway"], build=build,
    follows={topics.PROBLEMS: records_pb2.Problem, topics.TRAJECTORIES: records_pb2.Trajectory,
             topics.SCORED: records_pb2.Trajectory, topics.DECISIONS: records_pb2.CurationDecision,
             topics.CURATED: records_pb2.CuratedExample, topics.ORACLE_REJECTED: records_pb2.Trajectory,
             DEAD_LETTER: runtime_pb2.DeadLetter},
    publishes=[topics.PROBLEMS],
)

if __name__ == "__main__":
    run(SPEC)
