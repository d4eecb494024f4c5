"""Runs the style aligner service: python -m services.style_aligner --help"""

from __future__ import annotations

from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.backends.base import SamplingParams
from services.backends.factory import make_text_generator
from services.common.app import ServiceParts, run_service
from services.common.bus import Bus
from services.common.stage_runner import Stage
from services.oracle.service import oracle_writer, rejected_router
from services.style_aligner.servicer import StyleAlignerServicer
from services.style_aligner.settings import StyleAlignerSettings
from services.style_aligner.stage import StyleAligner


def build(settings: StyleAlignerSettings, bus: Bus) -> ServiceParts:
    writer, checker = oracle_writer("style_aligner", settings)
    # The learner continues repaired prefixes (gRPC repair calls need it whatever the stream modes).
    learner = make_text_generator(settings.model_copy(update={"model": settings.learner_model,
                                                              "backend": "transformers"}))
    # Greedy continuation: the learner's most likely way to finish from the repaired prefix.
    learner_params = SamplingParams(n=1, temperature=0.0, max_new_tokens=settings.learner_max_new_tokens)
    aligner = StyleAligner(writer, learner, learner_params, settings.style_window)
    servicer = StyleAlignerServicer(aligner, settings.max_trajectories_per_request)
    stage = Stage(
        name="style_aligner",
        consumes=settings.scored_topic,
        input_type=records_pb2.Trajectory,
        process=aligner,
        routes={records_pb2.Trajectory: settings.trajectories_topic},
        router=rejected_router(settings.rejected_topic),
    )
    return ServiceParts(
        register=lambda server: services_pb2_grpc.add_StyleAlignerServicer_to_server(servicer, server),
        service_names=[services_pb2.DESCRIPTOR.services_by_name["StyleAligner"].full_name],
        stages=[stage],
        topics=[settings.scored_topic, settings.trajectories_topic, settings.rejected_topic],
        on_stop=checker.close,
    )


if __name__ == "__main__":
    run_service(StyleAlignerSettings, build)
