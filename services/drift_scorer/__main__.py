"""Runs the drift scorer service: python -m services.drift_scorer --help"""

from __future__ import annotations

from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.backends.factory import make_logprob_scorer
from services.backends.following import FollowedModel
from services.common.app import ServiceParts, run_service
from services.common.bus import Bus
from services.common.stage_runner import Stage
from services.drift_scorer.servicer import DriftScorerServicer
from services.drift_scorer.settings import DriftScorerSettings
from services.drift_scorer.stage import DriftScorer, LearnerCheckpoints


def build(settings: DriftScorerSettings, bus: Bus) -> ServiceParts:
    current = make_logprob_scorer(settings)
    # On vLLM another checkpoint is a LoRA adapter applied per request on the loaded model;
    # on transformers it is loaded as a model of its own.
    load = current.with_adapter if settings.backend == "vllm" else (
        lambda path: make_logprob_scorer(settings, model=path))
    checkpoints = LearnerCheckpoints(
        settings.checkpoint,
        current,
        load=load,
        checkpoints_dir=settings.checkpoints_dir,
        max_loaded=settings.max_loaded_checkpoints,
        follow=FollowedModel(settings.checkpoint, current, load=load, settings=settings),
    )
    scorer = DriftScorer(checkpoints, settings.top_loss_tokens)
    servicer = DriftScorerServicer(scorer, settings.max_trajectories_per_request)
    stage = Stage(
        name="drift_scorer",
        consumes=settings.rewarded_topic,
        input_type=records_pb2.Trajectory,
        process=scorer,
        routes={records_pb2.Trajectory: settings.scored_topic},
    )
    return ServiceParts(
        register=lambda server: services_pb2_grpc.add_DriftScorerServicer_to_server(servicer, server),
        service_names=[services_pb2.DESCRIPTOR.services_by_name["DriftScorer"].full_name],
        stages=[stage],
        topics=[settings.rewarded_topic, settings.scored_topic],
    )


if __name__ == "__main__":
    run_service(DriftScorerSettings, build)
