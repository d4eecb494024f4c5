"""The registry service's gRPC API as a small client: what services and the CLI use instead of the store."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
from pydantic import Field
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from learnerfit.domain.promotion import followed
from learnerfit.errors import Unavailable, from_status
from learnerfit.section import Section
from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc


REGISTER_TRIES = 5  # a registry restarting (a rollout) answers within these, about a minute of backoff


class RegistryClient:
    """Calls wait (up to timeout_s) for the registry to serve, so services started together need no order."""

    def __init__(self, target: str, timeout_s: float = 30.0, credentials: grpc.ChannelCredentials | None = None):
        self.target = target
        self.timeout_s = timeout_s
        self._channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
        self._stub = services_pb2_grpc.RegistryStub(self._channel)

    def get(self, version: str) -> records_pb2.Checkpoint:
        try:
            return self._stub.GetCheckpoint(services_pb2.GetCheckpointRequest(version=version), timeout=self.timeout_s,
                                            wait_for_ready=True)
        except grpc.RpcError as exc:
            raise _error(exc, self.target) from None

    def list(self, page_size: int = 0) -> Iterator[records_pb2.Checkpoint]:
        """Every checkpoint, oldest first, page by page."""
        token = ""
        while True:
            try:
                page = self._stub.ListCheckpoints(services_pb2.ListCheckpointsRequest(page_size=page_size,
                                                                                      page_token=token),
                                                  timeout=self.timeout_s, wait_for_ready=True)
            except grpc.RpcError as exc:
                raise _error(exc, self.target) from None
            yield from page.checkpoints
            if not page.next_page_token:
                return
            token = page.next_page_token

    def register(self, request: services_pb2.RegisterRequest) -> records_pb2.Checkpoint:
        try:
            return self._stub.Register(request, timeout=max(self.timeout_s, 600), wait_for_ready=True)
        except grpc.RpcError as exc:
            raise _error(exc, self.target) from None

    def set_promotion(self, version: str, promotion: records_pb2.Promotion) -> records_pb2.Checkpoint:
        try:
            return self._stub.SetPromotion(services_pb2.SetPromotionRequest(version=version, promotion=promotion),
                                           timeout=self.timeout_s, wait_for_ready=True)
        except grpc.RpcError as exc:
            raise _error(exc, self.target) from None

    def close(self) -> None:
        self._channel.close()


class RemoteRegistry:
    """The trainer's registry when the registry service is the index's one writer: read through its API, and a
    checkpoint registered by copying it into `<shared root>/incoming/` and calling Register. Answers what the
    trainer asks of a CheckpointRegistry (list, latest, get, path_of, register)."""

    def __init__(self, client: RegistryClient, shared_root: Path):
        self.client = client
        self.shared_root = Path(shared_root).resolve()

    def list(self) -> list[records_pb2.Checkpoint]:
        return list(self.client.list())

    def latest(self) -> records_pb2.Checkpoint | None:
        return next(reversed(self.list()), None)

    def get(self, version: str) -> records_pb2.Checkpoint:
        return self.client.get(version)

    def path_of(self, checkpoint: records_pb2.Checkpoint) -> Path:
        return Path(checkpoint.uri)  # the volume is mounted at the same path in both pods

    def followed(self) -> records_pb2.Checkpoint | None:
        return followed(self.list())

    def set_promotion(self, version: str, promotion: records_pb2.Promotion) -> records_pb2.Checkpoint:
        return self.client.set_promotion(version, promotion)

    def register(self, source: Path, *, base_model: str, kind: int, example_ids=(), policy: str = "",
                 eval_results=None, training: records_pb2.TrainingRecipe | None = None,
                 promotion: records_pb2.Promotion | None = None) -> records_pb2.Checkpoint:
        name = f"{uuid.uuid4().hex}"
        incoming = self.shared_root / "incoming" / name
        shutil.copytree(source, incoming)  # plain files on the shared volume; the index is the registry's
        request = services_pb2.RegisterRequest(
            source=f"incoming/{name}", base_model=base_model, kind=kind, example_ids=list(example_ids), policy=policy,
            eval=dict(eval_results or {}), training=training, promotion=promotion)
        try:
            # Register is idempotent (keyed by what is registered), so a call whose reply was lost is asked again:
            # the registry answers with the checkpoint the first call made.
            for attempt in Retrying(retry=retry_if_exception_type(Unavailable), stop=stop_after_attempt(REGISTER_TRIES),
                                    wait=wait_exponential_jitter(initial=1, max=30), reraise=True):
                with attempt:
                    return self.client.register(request)
            raise AssertionError("unreachable")
        finally:
            shutil.rmtree(incoming, ignore_errors=True)  # registered (copied into place) or refused


def _error(exc: grpc.RpcError, target: str) -> Exception:
    """The error the registry's answer stands for (one table both ways: learnerfit/errors.py): only UNAVAILABLE and
    DEADLINE_EXCEEDED are worth retrying; a refusal (FAILED_PRECONDITION) or a failure (INTERNAL) is not."""
    return from_status(exc.code().name, exc.details() or "", f"registry at {target}")


class RegistryAccess(Section):
    """Where the registry service is."""

    target: str = Field("", description="gRPC address (host:port) of the registry service; empty: none (the learner "
                                        "then knows only the checkpoints announced on the `checkpoints` topic).")
    ca_file: Path | None = Field(None, description="CA (PEM) of the registry's certificate: call it over TLS.")
    cert_file: Path | None = Field(None, description="This service's client certificate (PEM): its identity, where "
                                                     "the registry asks for mutual TLS.")
    key_file: Path | None = Field(None, description="Private key (PEM) of cert_file.")

    def client(self) -> RegistryClient:
        credentials = None
        if self.ca_file is not None:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=self.ca_file.read_bytes(),
                private_key=self.key_file.read_bytes() if self.key_file else None,
                certificate_chain=self.cert_file.read_bytes() if self.cert_file else None)
        return RegistryClient(self.target, credentials=credentials)

    def lookup(self) -> Callable[[str], records_pb2.Checkpoint] | None:
        """GetCheckpoint by version, or None when no registry is configured."""
        return self.client().get if self.target else None

    def newest(self) -> records_pb2.Checkpoint | None:
        """The checkpoint the learner follows (the promoted one promoted last), None when there is none or no
        registry is configured."""
        if not self.target:
            return None
        client = self.client()
        try:
            return followed(client.list())
        finally:
            client.close()
