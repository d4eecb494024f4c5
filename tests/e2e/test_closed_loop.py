"""`learnerfit run --rounds 2` with the real SmolLM2 learner: sample, score, curate, train, evaluate, twice."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from learnerfit.registry.store import CheckpointRegistry


@pytest.mark.slow
def test_two_rounds_train_two_checkpoints_and_round_two_samples_with_the_first(tmp_path):
    registry_dir = tmp_path / "registry"
    out = tmp_path / "curated.jsonl"
    run = subprocess.run(
        [sys.executable, "-m", "learnerfit.cli", "--dir", str(tmp_path / "stack"), "run", "--rounds", "2",
         "--count", "6", "--samples", "6", "--max-new-tokens", "48", "--eval-problems", "4", "--eval-k", "2",
         "--registry", str(registry_dir), "--output", str(out), "--timeout", "900"],
        capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]
    for round_number, version in ((1, "v1"), (2, "v2")):
        assert re.search(rf"round {round_number}: learner accuracy on its samples \d\.\d+; trained {version} on "
                         rf"\d+ examples \(dft\); held-out avg@2 \d\.\d+", run.stdout), run.stdout[-3000:]
    checkpoints = CheckpointRegistry(registry_dir).list()
    assert [c.version for c in checkpoints] == ["v1", "v2"]
    assert all(set(c.eval) == {"avg@2"} and c.example_ids for c in checkpoints)
    first_round = [json.loads(x) for x in (tmp_path / "curated.round1.jsonl").read_text().splitlines()]
    second_round = [json.loads(x) for x in (tmp_path / "curated.round2.jsonl").read_text().splitlines()]
    # Round 1 sampled the base learner; round 2 sampled, and measured drift under, the first checkpoint.
    assert {e["checkpoint"] for e in first_round} == {"base"}
    assert {e["checkpoint"] for e in second_round} == {"v1"}
    assert {e["scores"]["drift_checkpoint"] for e in second_round} == {"v1"}
    assert set(checkpoints[1].example_ids) == {e["id"] for e in second_round}
