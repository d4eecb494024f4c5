"""Typed, layered service settings: defaults < YAML file (LEARNERFIT_CONFIG) < environment (LEARNERFIT_*).

A service's settings are one class of nested sections (`grpc`, `bus`, `stage`, and
its own: `learner`, `oracle`, `reward`, `train`, ...). The environment names a
field by its path with `__` between levels: LEARNERFIT_LEARNER__MODEL,
LEARNERFIT_BUS__BOOTSTRAP_SERVERS. Field descriptions are the reference a user
reads: `--help` and the settings reference (docs/settings.md) are made from them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from learnerfit.paths import default_cache_dir
from learnerfit.section import Section

ENV_PREFIX = "LEARNERFIT_"
CONFIG_FILE_ENV = "LEARNERFIT_CONFIG"


class GrpcSettings(Section):
    """The gRPC server."""

    host: str = Field("127.0.0.1", description="Address the server binds (0.0.0.0 in a container).")
    port: int = Field(50051, ge=0, le=65535, description="Port; 0 picks a free one.")
    max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="Largest message accepted or sent.")
    workers: int = Field(8, ge=1, le=256, description="Threads serving calls.")
    health_port: int = Field(-1, ge=-1, le=65535, description="A second, plaintext port serving only the health "
                                                              "protocol (Kubernetes' gRPC probes speak no TLS); -1: "
                                                              "none, 0: a free one.")
    reflection: bool = Field(True, description="Serve gRPC reflection (grpcurl can list the API); off in production.")
    tls_cert_file: Path | None = Field(None, description="Server certificate (PEM): serve TLS instead of plaintext.")
    tls_key_file: Path | None = Field(None, description="Private key (PEM) of tls_cert_file.")
    tls_client_ca_file: Path | None = Field(None, description="CA (PEM) that signs client certificates: with it, "
                                                              "callers must present one (mutual TLS).")
    auth_token_file: Path | None = Field(None, description="File holding the bearer token callers must send "
                                                           "(`authorization: Bearer ...`); unset: no token asked.")

    @model_validator(mode="after")
    def _pairs(self) -> GrpcSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file (mutual TLS) needs tls_cert_file and tls_key_file")
        return self


class BusSettings(Section):
    """The Kafka bus."""

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated host:port.")
    topic_prefix: str = Field("", description="Prefix of every topic name (several pipelines on one cluster).")
    create_topics: bool = Field(True, description="Create missing topics at start (off where an operator, e.g. "
                                                  "Strimzi, owns them).")
    topic_partitions: int = Field(3, ge=1, description="Partitions of the topics this service creates.")
    topic_replication: int = Field(1, ge=1, description="Replication factor of the topics this service creates.")
    session_timeout_ms: int = Field(10_000, ge=1000, description="Consumer session timeout; a dead consumer's "
                                                                 "partitions move after this.")
    max_record_bytes: int = Field(1_000_000, ge=1024, description="Largest record produced (keep it under the "
                                                                  "broker's message.max.bytes, about 1 MB on Kafka).")
    publish_timeout_s: float = Field(4.0, gt=0, description="How long a send waits for the broker's metadata, and "
                                                          "SubmitBatch for its acknowledgement, before the broker "
                                                          "counts as unreachable (UNAVAILABLE to the caller; a "
                                                          "stage retries within stage.retry_budget_s).")
    compression: str = Field("gzip", pattern="^(gzip|none)$", description="Producer compression: gzip or none.")
    security_protocol: str = Field("PLAINTEXT", pattern="^(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)$",
                                   description="Kafka security: PLAINTEXT, SSL (TLS, client certs), SASL_SSL, ...")
    sasl_mechanism: str = Field("SCRAM-SHA-512", pattern="^(PLAIN|SCRAM-SHA-256|SCRAM-SHA-512)$",
                                description="SASL mechanism (with a SASL_* protocol); Strimzi's KafkaUser: "
                                            "SCRAM-SHA-512.")
    sasl_username: str = Field("", description="SASL user (Strimzi: the KafkaUser's name).")
    sasl_password: SecretStr = Field(SecretStr(""), description="SASL password (from the KafkaUser's Secret; never "
                                                                "logged or printed).")
    sasl_password_file: Path | None = Field(None, description="File holding the SASL password (the KafkaUser's "
                                                              "Secret mounted, so it is in no environment); read at "
                                                              "start, over sasl_password.")
    ssl_cafile: Path | None = Field(None, description="CA (PEM) of the brokers' certificates (Strimzi: the cluster "
                                                      "CA).")
    ssl_certfile: Path | None = Field(None, description="Client certificate (PEM) for TLS client authentication.")
    ssl_keyfile: Path | None = Field(None, description="Private key (PEM) of ssl_certfile.")

    def client_security(self) -> dict[str, Any]:
        """The kafka-python keyword arguments for these settings (empty for PLAINTEXT)."""
        options: dict[str, Any] = {}
        if self.security_protocol != "PLAINTEXT":
            options["security_protocol"] = self.security_protocol
        if self.security_protocol.startswith("SASL"):
            password = self.sasl_password_file.read_text(encoding="utf-8").strip() if self.sasl_password_file \
                else self.sasl_password.get_secret_value()
            options |= {"sasl_mechanism": self.sasl_mechanism, "sasl_plain_username": self.sasl_username,
                        "sasl_plain_password": password}
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, name) is not None:
                options[name] = str(getattr(self, name))
        return options


class StageSettings(Section):
    """How the service's stage reads its input."""

    group: str = Field("", description="Kafka consumer group; empty means the service's name.")
    max_batch: int = Field(1, ge=1, le=4096, description="Most input records handed to the stage at once.")
    max_wait_s: float = Field(0.2, ge=0, le=60, description="After the first record of a batch, how long to wait "
                                                            "for more.")
    dedupe_window: int = Field(100_000, ge=0, description="How many recent input ids are remembered to drop "
                                                          "redelivered duplicates.")
    retry_budget_s: float = Field(120.0, ge=0, description="How long a transient failure (a back end, the registry "
                                                           "or the broker down; a timeout) is retried before its "
                                                           "records are dead-lettered.")
    retry_initial_s: float = Field(0.5, gt=0, description="First wait before a retry; doubles each time, with "
                                                          "jitter.")
    retry_max_s: float = Field(30.0, gt=0, description="Longest wait between two retries.")


class LogSettings(Section):
    """Logs and metrics."""

    level: str = Field("INFO", description="Python log level.")
    format: str = Field("json", pattern="^(json|text)$", description="Log line format: json or text.")
    metrics_port: int = Field(0, ge=-1, le=65535, description="Prometheus /metrics port; 0 picks a free one, -1 "
                                                              "disables.")


class ServiceSettings(BaseSettings):
    """Settings every service has."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid",
                                      validate_default=True, nested_model_default_partial_update=True)
    service_name: ClassVar[str] = "service"

    grpc: GrpcSettings = GrpcSettings()
    bus: BusSettings = BusSettings()
    log: LogSettings = LogSettings()
    shutdown_grace_s: float = Field(10.0, ge=0, description="On SIGTERM, how long in-flight work may take to finish.")
    cache_dir: Path = Field(default_factory=default_cache_dir, description="Converted and built model weights.")

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


def setting_rows(settings_cls: type[BaseModel], path: tuple[str, ...] = (),
                 defaults: BaseModel | None = None) -> list[tuple[str, str, str]]:
    """(environment variable, default, description) per leaf setting, sections flattened, in declaration order."""
    rows = []
    for name, field in settings_cls.model_fields.items():
        default = getattr(defaults, name) if defaults is not None else field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            rows += setting_rows(type(default), (*path, name), default)
            continue
        env = ENV_PREFIX + "__".join((*path, name)).upper()
        rows.append((env, _shown(default), field.description or ""))
    return rows


def _shown(default: Any) -> str:
    """A default as a reader should see it: paths under the home directory as ~/..., the same on every machine."""
    if isinstance(default, Path):
        home = Path.home()
        return repr(f"~/{default.relative_to(home)}" if default.is_relative_to(home) else str(default))
    return repr(default)


def settings_table(settings_cls: type[ServiceSettings]) -> str:
    """One line per setting, for --help."""
    rows = setting_rows(settings_cls)
    width = max(len(r[0]) for r in rows)
    dwidth = min(max(len(r[1]) for r in rows), 28)
    return "\n".join(f"  {env:<{width}}  {default:<{dwidth}}  {doc}" for env, default, doc in rows)


def settings_markdown(settings_cls: type[ServiceSettings]) -> str:
    """A Markdown table of every setting, for the settings reference."""
    lines = ["| environment variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{env}` | `{default}` | {doc} |" for env, default, doc in setting_rows(settings_cls)]
    return "\n".join(lines)
