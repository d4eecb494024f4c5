"""The gateway's gRPC API: SubmitBatch, GetBatch, StreamResults."""

from __future__ import annotations

import logging

import grpc

from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.common.bus import Bus, PublishError
from services.common.grpc_runtime import InvalidArgument, abort_on_invalid
from services.common.ids import stable_id
from services.common.validation import complete_sampling, validate_problems, validate_sampling
from services.curator.policies import POLICIES
from services.gateway.ledger import BatchLedger
from services.gateway.settings import GatewaySettings
from services.oracle.selection import MODE_NAMES

log = logging.getLogger(__name__)


def prepare_batch(
    request: services_pb2.SubmitBatchRequest, settings: GatewaySettings
) -> tuple[str, list[records_pb2.Problem]]:
    """Validates a submission and returns its batch id and problems with ids, sampling and policy filled in."""
    validate_problems(request.problems, settings)
    sampling = complete_sampling(request.sampling if request.HasField("sampling") else None, settings)
    validate_sampling(sampling, settings, "sampling")
    policy = request.curation_policy or settings.default_policy
    if policy not in POLICIES:
        raise InvalidArgument("curation_policy", f"unknown policy {policy!r}; known: {sorted(POLICIES)}")

    modes = list(request.oracle_modes)
    for i, mode in enumerate(modes):
        if mode not in MODE_NAMES:
            raise InvalidArgument(f"oracle_modes[{i}]", f"unknown Oracle mode {mode}; known: {sorted(MODE_NAMES.values())}")
        if mode in modes[:i]:
            raise InvalidArgument(f"oracle_modes[{i}]", f"{MODE_NAMES[mode]} given twice")
    modes.sort()

    contents = [stable_id("content", p.question, p.reference_answer, p.source) for p in request.problems]
    first_index: dict[str, int] = {}
    for i, content in enumerate(contents):
        if content in first_index:
            raise InvalidArgument(f"problems[{i}]", f"duplicates problems[{first_index[content]}]")
        first_index[content] = i
    # Same problems, sampling and policy -> same batch: a retried submission is recognised.
    batch_id = stable_id("batch", *contents, sampling.SerializeToString(deterministic=True).hex(), policy,
                         *([f"oracle:{m}" for m in modes]))
    problems = []
    for given, content in zip(request.problems, contents, strict=True):
        problems.append(records_pb2.Problem(
            id=stable_id("problem", batch_id, content),
            batch_id=batch_id,
            question=given.question,
            reference_answer=given.reference_answer,
            source=given.source,
            sampling=sampling,
            curation_policy=policy,
            oracle_modes=modes,
        ))
    return batch_id, problems


class GatewayServicer(services_pb2_grpc.GatewayServicer):
    def __init__(self, settings: GatewaySettings, bus: Bus, ledger: BatchLedger):
        self.settings = settings
        self.bus = bus
        self.ledger = ledger

    def SubmitBatch(self, request: services_pb2.SubmitBatchRequest, context: grpc.ServicerContext):
        try:
            batch_id, problems = prepare_batch(request, self.settings)
        except InvalidArgument as exc:
            abort_on_invalid(context, exc)
        problem_ids = [p.id for p in problems]
        if self.ledger.knows(batch_id):
            return services_pb2.SubmitBatchResponse(
                batch_id=batch_id, problem_ids=problem_ids, already_submitted=True,
                status=self.ledger.status(batch_id),
            )
        try:
            self.bus.publish((self.settings.problems_topic, p) for p in problems)
        except PublishError as exc:
            # Nothing is recorded as accepted: the client's retry publishes again, and the
            # problems' stable ids let the generator drop any that did get through.
            context.abort(grpc.StatusCode.UNAVAILABLE, f"could not publish the batch, retry: {exc}")
        for problem in problems:
            self.ledger.apply(problem)
        log.info("accepted batch %s with %d problems", batch_id, len(problems), extra={"batch_id": batch_id})
        return services_pb2.SubmitBatchResponse(
            batch_id=batch_id, problem_ids=problem_ids, status=self.ledger.status(batch_id)
        )

    def GetBatch(self, request: services_pb2.GetBatchRequest, context: grpc.ServicerContext):
        return self._status_or_abort(request.batch_id, context)

    def StreamResults(self, request: services_pb2.StreamResultsRequest, context: grpc.ServicerContext):
        self._status_or_abort(request.batch_id, context)
        sent = 0
        while context.is_active():
            examples, complete = self.ledger.curated_from(request.batch_id, sent)
            yield from examples
            sent += len(examples)
            if complete and not examples:
                return
            if not examples:
                self.ledger.wait(self.settings.stream_idle_s)

    def _status_or_abort(self, batch_id: str, context: grpc.ServicerContext) -> records_pb2.BatchStatus:
        if not batch_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "batch_id: must not be empty")
        status = self.ledger.status(batch_id)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"batch_id: no batch {batch_id!r}")
        return status
