"""Trainer: fine-tunes the learner on curated examples (TRL SFT, dft or nll), registers each checkpoint and
announces it on `checkpoints`, which the generator and drift scorer follow once its promotion gate promoted it;
watches the promoted learner's accuracy on its own fresh samples and rolls it back when it drops."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from learnerfit.domain import topics
from learnerfit.domain.intake import IntakeLimits, validate_problems, validate_sampling
from learnerfit.domain.promotion import PromotionSettings
from learnerfit.errors import FailedPrecondition, InvalidInput
from learnerfit.paths import default_registry_dir
from learnerfit.registry.client import RegistryAccess, RemoteRegistry
from learnerfit.registry.store import CheckpointRegistry
from learnerfit.runtime.app import DEAD_LETTER, run
from learnerfit.runtime.settings import ServiceSettings, StageSettings
from learnerfit.runtime.spec import Context, Parts, ServiceSpec
from learnerfit.runtime.stage import StageLogic, StageSpec
from learnerfit.v1 import records_pb2, runtime_pb2, services_pb2
from trainer.config import TrainSettings
from trainer.continuous import ContinuousTrainer
from trainer.evaluate import EVAL_TEMPERATURE, HeldOutEvaluator, summary
from trainer.promotion import PromotionGate, PromotionWatch
from trainer.sft import evaluate as evaluate_learner, learner_path


class TrainerSettings(ServiceSettings):
    """Trainer: fine-tunes the learner on curated examples (TRL SFT, dft or nll) and registers each checkpoint."""

    service_name: ClassVar[str] = "trainer"
    train: TrainSettings = TrainSettings()
    registry_dir: Path = Field(default_factory=default_registry_dir,
                               description="Checkpoint registry to train into.")
    train_every: int = Field(32, ge=0, description="Train once this many curated examples are held; 0: only when a "
                                                   "Train call asks.")
    wait_s: float = Field(300.0, gt=0, description="Longest a Train call waits for the examples it names to arrive.")
    retry_initial_s: float = Field(30.0, gt=0, description="A failed training is tried again after this, then after "
                                                           "twice as long each time; its examples stay held.")
    retry_max_s: float = Field(600.0, gt=0, description="Longest wait between tries of a failed training.")
    max_tries: int = Field(6, ge=1, description="Tries of a training before its examples are dead-lettered with the "
                                                "reason and let go (`learnerfit dead-letters --replay` puts them "
                                                "back).")
    intake: IntakeLimits = IntakeLimits()  # what an Evaluate call with problems of its own may ask
    registry: RegistryAccess = Field(RegistryAccess(), description="The registry service. With a target the "
                                     "trainer registers through its Register call (the service is the index's one "
                                     "writer; registry_dir is then the volume both share); without, it writes the "
                                     "index in registry_dir itself.")
    promotion: PromotionSettings = PromotionSettings()
    stage: StageSettings = StageSettings(max_batch=256)


def build(settings: TrainerSettings, context: Context) -> Parts:
    registry = RemoteRegistry(settings.registry.client(), settings.registry_dir) if settings.registry.target \
        else CheckpointRegistry(settings.registry_dir)
    evaluator = HeldOutEvaluator(settings.train, settings.cache_dir)
    gate = PromotionGate(registry, evaluator, settings.promotion)
    if settings.train_every:
        gate.check_size()  # training on its own, it must be able to tell a worse checkpoint from noise
    trainer = ContinuousTrainer(registry, settings.train, settings.train_every, evaluator, gate,
                                retry_initial_s=settings.retry_initial_s, retry_max_s=settings.retry_max_s,
                                max_tries=settings.max_tries)
    # A trainer killed mid-promotion left its checkpoint pending: decided now. Then the newest record and the
    # followed one are announced again (a trainer killed between deciding and announcing must not leave the learner
    # services on an older checkpoint; an announcement they have seen is recognised by its version and state).
    gate.settle()
    again = {c.version: c for c in (registry.latest(), registry.followed()) if c is not None}
    if again:
        context.bus.publish([(topics.CHECKPOINTS, c) for c in again.values()])

    def train(request: services_pb2.TrainRequest) -> services_pb2.TrainResponse:
        source = request.WhichOneof("examples_from")
        if source == "given":
            if not request.given.examples:
                raise InvalidInput("given.examples", "must hold at least one example")
            given = request.given
            checkpoint = trainer.train_given(given.examples, request.start_from,
                                             seed=given.seed if given.HasField("seed") else None,
                                             epochs=given.epochs if given.HasField("epochs") else None)
            context.bus.publish([(topics.CHECKPOINTS, checkpoint)])
            return services_pb2.TrainResponse(checkpoint=checkpoint)
        if request.start_from:
            raise InvalidInput("start_from", "only with given examples: the held examples train on the newest "
                                             "checkpoint")
        batch_id = request.batch.batch_id if source == "batch" else ""
        if source == "batch":
            if not batch_id:
                raise InvalidInput("batch.batch_id", "must name the batch whose examples to wait for")
            trainer.wait_for(batch_id, request.batch.min_examples, settings.wait_s)
        checkpoint = trainer.train_now()
        if checkpoint is None:
            # Asked for a batch the trainer already trained on (its every --train-every, or an earlier call):
            # the call is answered by that checkpoint, so asking twice is safe.
            done = trainer.newest_with(batch_id) if batch_id else None
            if done is None:
                raise FailedPrecondition("no curated examples to train on")
            return services_pb2.TrainResponse(checkpoint=done)
        context.bus.publish([(topics.CHECKPOINTS, checkpoint)])  # announced, as the stage's checkpoints are
        return services_pb2.TrainResponse(checkpoint=checkpoint)

    def evaluate(request: services_pb2.EvaluateRequest) -> services_pb2.EvaluateResponse:
        version = request.version or "base"
        if not request.problems:
            return services_pb2.EvaluateResponse(version=version,
                                                 eval=evaluate_learner(registry, version, evaluator))
        validate_problems(request.problems, settings.intake, "problems")
        k = request.k or settings.train.eval_k
        max_new_tokens = request.max_new_tokens or settings.train.eval_max_new_tokens
        # The sampling the evaluation does, checked as a batch's would be (k 1..64, tokens 1..4096 by default).
        validate_sampling(records_pb2.SamplingSpec(samples_per_problem=k, max_new_tokens=max_new_tokens,
                                                   temperature=EVAL_TEMPERATURE, top_p=1.0), settings.intake,
                          "evaluation")
        samples = evaluator.samples(learner_path(registry, version, settings.train.base_model), request.problems,
                                    k=k, max_new_tokens=max_new_tokens)
        return services_pb2.EvaluateResponse(version=version, samples=samples, eval=summary(samples, k))

    watch = PromotionWatch(registry, settings.promotion,
                           announce=lambda checkpoint: context.bus.publish([(topics.CHECKPOINTS, checkpoint)]))
    return Parts(rpcs={"Train": train, "Evaluate": evaluate}, fold=watch.fold,
                 stage=StageLogic(trainer, held=trainer, check=trainer.check, tick=trainer.tick))


SPEC = ServiceSpec(
    name="trainer", settings=TrainerSettings, api=services_pb2.DESCRIPTOR.services_by_name["Trainer"], build=build,
    stage=StageSpec(consumes=[topics.CURATED], input_type=records_pb2.CuratedExample,
                    produces={records_pb2.Checkpoint: topics.CHECKPOINTS, runtime_pb2.DeadLetter: DEAD_LETTER}),
    publishes=[topics.CHECKPOINTS],
    # The promotion watch: which checkpoint is followed, and how the learner does on its own fresh samples.
    follows={topics.CHECKPOINTS: records_pb2.Checkpoint, topics.SCORED: records_pb2.Trajectory},
)

if __name__ == "__main__":
    run(SPEC)
