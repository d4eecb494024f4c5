"""One dependency set: every image installs the package versions constraints.txt names."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _constraints() -> dict[str, str]:
    pins = (line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#"))
    return {name.lower().replace("_", "-"): version for name, version in pins}


def test_every_version_an_image_pins_is_the_one_constraints_txt_names():
    constraints = _constraints()
    pinned = {}
    for dockerfile in sorted((ROOT / "deploy" / "docker").glob("*.Dockerfile")):
        for name, version in re.findall(r"\b([A-Za-z][\w.-]*)==([\w.+]+)", dockerfile.read_text()):
            pinned[(dockerfile.name, name.lower())] = version
    assert ("triton.Dockerfile", "transformers") in pinned  # the Triton image's model code pins its own
    assert {key: version for key, version in pinned.items() if constraints.get(key[1]) != version} == {}


def test_images_that_install_the_project_install_it_under_constraints_txt():
    for name in ("cpu.Dockerfile", "gpu.Dockerfile"):
        installs = re.findall(r"pip install [^\n]*\.(?:\[\w+\])?[\"']?(?:\s|$)",
                              (ROOT / "deploy" / "docker" / name).read_text())
        assert installs and all("-c constraints.txt" in line for line in installs), (name, installs)


def test_the_triton_image_holds_the_repository_its_deployment_serves_and_the_reward_scorer_the_same_model():
    """What nothing can build here (no container engine) is at least wired: the Triton image builds the reward
    model's repository where the Deployment points tritonserver, the weights where the repository's configuration
    says, and the gpu image the same reward model where the gpu overlay's reward scorer reads its tokenizer."""
    from learnerfit.models.weights import reward_model_dir

    triton = (ROOT / "deploy" / "docker" / "triton.Dockerfile").read_text()
    gpu = (ROOT / "deploy" / "docker" / "gpu.Dockerfile").read_text()
    built = str(reward_model_dir(Path("/opt/build/.cache/learnerfit")))
    assert f"cp -r {built} /out-weights" in triton and f"cp -r {built} /opt/reward-model" in gpu
    served = re.search(r"triton-repository (\S+) --weights (\S+) --gpu", triton)
    assert served and f"COPY --from=build {served[1]} /models/repository" in triton
    assert f"COPY --from=build /out-weights {served[2]}" in triton
    deployment = (ROOT / "deploy" / "k8s" / "overlays" / "gpu" / "triton.yaml").read_text()
    assert "--model-repository=/models/repository" in deployment and "persistentVolumeClaim" not in deployment
    overlay = (ROOT / "deploy" / "k8s" / "overlays" / "gpu" / "kustomization.yaml").read_text()
    reward_model = re.search(r"LEARNERFIT_REWARD__MODEL, value: (\S+)\}", overlay)
    assert reward_model and f"COPY --from=build /opt/reward-model {reward_model[1]}" in gpu


def test_the_triton_image_s_repository_command_writes_the_gpu_configuration_for_an_image_with_its_own_torch(tmp_path):
    import subprocess
    import sys

    written = subprocess.run([sys.executable, "-m", "learnerfit.generate", "triton-repository", str(tmp_path / "repo"),
                              "--weights", "/models/reward_model/weights", "--gpu", "--python-path", ""],
                             capture_output=True, text=True, check=True)
    assert written.stdout.strip() == str(tmp_path / "repo")
    model = tmp_path / "repo" / "reward_model"
    config = (model / "config.pbtxt").read_text()
    assert (model / "1" / "model.py").is_file() and "kind: KIND_GPU" in config and "@" not in config
    assert 'key: "weights" value: { string_value: "/models/reward_model/weights" }' in config
    assert 'key: "python_path" value: { string_value: "" }' in config
