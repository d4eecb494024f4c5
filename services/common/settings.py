"""Typed, layered service settings: defaults < YAML file (LEARNERFIT_CONFIG) < environment (LEARNERFIT_*).

Each service has one settings class; its field descriptions are the reference a
user reads (`--help`, the README table, the ConfigMap all come from them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from services.common import topics

ENV_PREFIX = "LEARNERFIT_"
CONFIG_FILE_ENV = "LEARNERFIT_CONFIG"


class ServiceSettings(BaseSettings):
    """Settings every service has: where the broker is, where it listens, how it logs."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)
    service_name: ClassVar[str] = "service"

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated host:port.")
    grpc_host: str = Field("127.0.0.1", description="Address the gRPC server binds (0.0.0.0 in a container).")
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    grpc_max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="Largest gRPC message accepted or sent.")
    grpc_workers: int = Field(8, ge=1, le=256, description="Threads serving gRPC calls.")
    metrics_port: int = Field(0, ge=-1, le=65535, description="Prometheus /metrics port; 0 picks a free one, -1 disables.")
    shutdown_grace_s: float = Field(10.0, ge=0, description="On SIGTERM, how long in-flight work may take to finish.")
    log_level: str = Field("INFO", description="Python log level.")
    log_format: str = Field("json", pattern="^(json|text)$", description="Log line format: json or text.")
    topic_partitions: int = Field(3, ge=1, description="Partitions of the topics this service creates if missing.")
    topic_replication: int = Field(1, ge=1, description="Replication factor of the topics this service creates.")
    dead_letter_topic: str = Field(topics.DEAD_LETTER, description="Topic for records that can never be processed.")
    consumer_session_timeout_ms: int = Field(
        10_000, ge=1000, description="Kafka consumer session timeout; a dead consumer's partitions move after this."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: explicit arguments, then the environment, then the YAML file.
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            if not Path(config_file).is_file():
                raise FileNotFoundError(f"{CONFIG_FILE_ENV}={config_file}: no such file")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


class StageSettings(ServiceSettings):
    """Settings of a service that runs a Kafka stage: what it reads, in what batches."""

    consumer_group: str = Field("", description="Kafka consumer group; empty means the service's name.")
    max_batch: int = Field(1, ge=1, le=4096, description="Most input records handed to the stage at once.")
    max_wait_s: float = Field(
        0.2, ge=0, le=60, description="After the first record of a batch, how long to wait for more."
    )
    dedupe_window: int = Field(
        100_000, ge=0, description="How many recent input ids are remembered to drop redelivered duplicates."
    )


def settings_table(settings_cls: type[ServiceSettings]) -> str:
    """One line per setting: environment variable, default, description (for --help and the README)."""
    rows = []
    for name, field in settings_cls.model_fields.items():
        default: Any = field.get_default(call_default_factory=True)
        rows.append((f"{ENV_PREFIX}{name.upper()}", repr(default), field.description or ""))
    width = max(len(r[0]) for r in rows)
    dwidth = min(max(len(r[1]) for r in rows), 28)
    return "\n".join(f"  {env:<{width}}  {default:<{dwidth}}  {doc}" for env, default, doc in rows)
