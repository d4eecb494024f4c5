"""The curator's gRPC face: decides on the candidates given, without waiting for more."""

from __future__ import annotations

import grpc

from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.common.grpc_runtime import InvalidArgument, abort_on_invalid
from services.common.validation import validate_trajectories
from services.curator.policies import DEFAULT_POLICY, POLICIES
from services.curator.stage import decide


class CuratorServicer(services_pb2_grpc.CuratorServicer):
    def __init__(self, max_trajectories: int):
        self.max_trajectories = max_trajectories

    def Curate(self, request: services_pb2.CurateRequest, context: grpc.ServicerContext):
        try:
            validate_trajectories(request.trajectories, self.max_trajectories)
            if request.policy and request.policy not in POLICIES:
                raise InvalidArgument("policy", f"unknown policy {request.policy!r}; known: {sorted(POLICIES)}")
        except InvalidArgument as exc:
            abort_on_invalid(context, exc)
        by_problem: dict[tuple[str, str], list[records_pb2.Trajectory]] = {}
        for trajectory in request.trajectories:
            by_problem.setdefault((trajectory.problem.batch_id, trajectory.problem.id), []).append(trajectory)
        response = services_pb2.CurateResponse()
        for candidates in by_problem.values():
            problem = candidates[0].problem
            policy = request.policy or problem.curation_policy or DEFAULT_POLICY
            decision, example = decide(problem, candidates, policy)
            response.decisions.append(decision)
            if example is not None:
                response.examples.append(example)
        return response
