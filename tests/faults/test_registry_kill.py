"""The registry as a process, SIGKILLed after it recorded a promotion decision and before it announced it (held
there by a pause point, so the moment happens however busy the machine): a real follower, the drift scorer, is on
the old learner until the registry restarts, and then on the checkpoint the registry recorded; for a promotion and
for a roll-back alike."""

from __future__ import annotations

import threading

import grpc

from learnerfit.local.stack import LocalStack
from learnerfit.registry.store import CheckpointRegistry
from learnerfit.runtime.faults import PAUSE_AT, PAUSE_DIR
from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from tests.faults.test_trainer_kill import _wait_until
from tests.services.test_promotion import _eventually, _learner

PROMOTED, ROLLED_BACK = records_pb2.PROMOTION_STATE_PROMOTED, records_pb2.PROMOTION_STATE_ROLLED_BACK


def test_a_registry_killed_between_recording_and_announcing_leaves_every_follower_on_what_it_recorded(
        tiny_model, tmp_path, monkeypatch):
    registry_dir, pauses = tmp_path / "registry", tmp_path / "pauses"
    writer = CheckpointRegistry(registry_dir, writer=True)
    for _ in range(2):  # v1 and v2: the tiny model's weights, registered as full checkpoints
        writer.register(tiny_model, base_model=str(tiny_model), kind=records_pb2.CHECKPOINT_KIND_FULL,
                        promotion=records_pb2.Promotion(state=records_pb2.PROMOTION_STATE_PENDING))
    writer.set_promotion("v1", records_pb2.Promotion(state=PROMOTED, decided_by="gate", reason="test"))
    monkeypatch.setenv(PAUSE_AT, "registry.recorded")
    monkeypatch.setenv(PAUSE_DIR, str(pauses))
    stack = LocalStack(tmp_path / "stack", services=("registry", "drift_scorer"), start_timeout_s=120, config={
        "registry": {"registry_dir": str(registry_dir)},
        "drift_scorer": {"learner": {"model": str(tiny_model)}}})
    stack.start()
    reader = CheckpointRegistry.reader(registry_dir)
    try:
        drift = services_pb2_grpc.DriftScorerStub(grpc.insecure_channel(stack.state.services["drift_scorer"].grpc_target))
        assert _eventually(lambda: _learner(drift), "v1") == "v1"
        for version, state, before, after in (("v2", PROMOTED, "v1", "v2"), ("v2", ROLLED_BACK, "v2", "v1")):
            _decide_and_kill(stack, pauses, version, state)
            assert reader.followed().version == after  # recorded ...
            assert _learner(drift) == before           # ... and not announced: the follower is where it was
            monkeypatch.delenv(PAUSE_AT)
            stack.restart("registry")  # announces the followed checkpoint and the last decided one again
            assert _eventually(lambda: _learner(drift), after) == after
            monkeypatch.setenv(PAUSE_AT, "registry.recorded")
            stack.kill("registry")
            stack.restart("registry")
    finally:
        stack.stop()
    assert [c.promotion.state for c in reader.list()] == [PROMOTED, ROLLED_BACK]


def _decide_and_kill(stack: LocalStack, pauses, version: str, state: int) -> None:
    """Asks the registry to record `state` for `version`, waits until it holds the decision at its pause point,
    SIGKILLs it there; the caller's call fails (its reply is lost)."""
    (pauses / "registry.recorded").unlink(missing_ok=True)
    registry = services_pb2_grpc.RegistryStub(grpc.insecure_channel(stack.state.services["registry"].grpc_target))
    failed: list[grpc.StatusCode] = []

    def call() -> None:
        try:
            registry.SetPromotion(services_pb2.SetPromotionRequest(
                version=version, promotion=records_pb2.Promotion(state=state, decided_by="operator", reason="t")),
                timeout=60)
        except grpc.RpcError as error:
            failed.append(error.code())

    caller = threading.Thread(target=call)
    caller.start()
    _wait_until((pauses / "registry.recorded").exists, 60, "the registry to hold the decision")
    stack.kill("registry")
    caller.join(timeout=30)
    assert failed == [grpc.StatusCode.UNAVAILABLE]
