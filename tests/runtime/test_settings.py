"""Service settings: defaults < YAML file < environment, nested sections, errors that name the setting, --help and
--print-config made from the classes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from services.generator import GeneratorSettings


def _service(*args, env=None, timeout=120) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEARNERFIT_")}
    return subprocess.run([sys.executable, "-m", "services.generator", *args], capture_output=True, text=True,
                          env={**clean, **(env or {})}, timeout=timeout)


def test_the_environment_beats_the_file_which_beats_the_defaults_section_by_section(tmp_path, monkeypatch):
    config = tmp_path / "generator.yaml"
    config.write_text("learner:\n  model: /models/from-file\n  torch_threads: 2\nstage:\n  max_batch: 3\n")
    monkeypatch.setenv("LEARNERFIT_CONFIG", str(config))
    monkeypatch.setenv("LEARNERFIT_LEARNER__TORCH_THREADS", "4")
    settings = GeneratorSettings()
    assert settings.learner.model == "/models/from-file"           # file
    assert settings.learner.torch_threads == 4                     # environment over file
    assert settings.stage.max_batch == 3 and settings.stage.max_wait_s == 0.5  # the service's own default kept
    assert settings.learner.device == "cpu"                        # default


def test_print_config_shows_the_effective_settings_as_json(tmp_path):
    out = _service("--print-config", env={"LEARNERFIT_LEARNER__MODEL": "/models/x", "LEARNERFIT_GRPC__PORT": "7001"})
    assert out.returncode == 0, out.stderr
    effective = json.loads(out.stdout)
    assert effective["learner"]["model"] == "/models/x" and effective["grpc"]["port"] == 7001


def test_a_bad_setting_stops_the_service_with_an_error_that_names_it(tmp_path):
    out = _service(env={"LEARNERFIT_LEARNER__TORCH_THREADS": "0"})
    assert out.returncode == 2
    assert "generator: invalid settings" in out.stderr and "learner.torch_threads" in out.stderr
    unknown = tmp_path / "bad.yaml"
    unknown.write_text("learner:\n  modle: typo\n")
    out = _service(env={"LEARNERFIT_CONFIG": str(unknown)})
    assert out.returncode == 2 and "learner.modle" in out.stderr and "Extra inputs are not permitted" in out.stderr
    out = _service(env={"LEARNERFIT_CONFIG": str(tmp_path / "missing.yaml")})
    assert out.returncode == 2 and "missing.yaml: no such file" in out.stderr


def test_help_lists_the_api_the_topics_and_every_setting_with_its_default():
    out = _service("--help")
    assert out.returncode == 0
    assert "gRPC: learnerfit.v1.Generator (Generate)" in out.stdout
    assert "consumes: problems" in out.stdout and "produces: trajectories" in out.stdout
    assert "follows (from the beginning): checkpoints" in out.stdout
    assert "LEARNERFIT_LEARNER__MODEL" in out.stdout and "'smollm2-135m-instruct'" in out.stdout


def test_secrets_can_come_from_mounted_files_instead_of_the_environment(tmp_path, monkeypatch):
    """The gpu overlay mounts the KafkaUser's password and the Oracle's key as files: a file wins over the
    environment variable, and a value read from one carries no trailing newline."""
    from learnerfit.models.settings import OracleSettings
    from learnerfit.runtime.settings import BusSettings

    (tmp_path / "password").write_text("s3cret\n")
    (tmp_path / "api-key").write_text("sk-from-file\n")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    bus = BusSettings(security_protocol="SASL_SSL", sasl_username="curator", sasl_password="ignored",
                      sasl_password_file=tmp_path / "password")
    assert bus.client_security()["sasl_plain_password"] == "s3cret"
    assert OracleSettings(api_key_file=tmp_path / "api-key").api_key() == "sk-from-file"
    assert OracleSettings().api_key() == "sk-from-env"
