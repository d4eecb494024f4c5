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
