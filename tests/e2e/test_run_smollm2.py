"""`learnerfit run` (what `make run` calls) with the real SmolLM2-135M-Instruct learner on easy problems."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from learnerfit.domain.problems import EASY_ARITHMETIC, from_reasoning_gym
from learnerfit.domain.prompts import DEMONSTRATIONS


@pytest.mark.slow
def test_learnerfit_run_curates_real_correct_learner_samples(tmp_path):
    out = tmp_path / "curated.jsonl"
    run = subprocess.run(
        [sys.executable, "-m", "learnerfit.cli", "--dir", str(tmp_path / "stack"), "run",
         "--count", "8", "--samples", "8", "--seed", "0", "--output", str(out), "--timeout", "600"],
        capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert re.search(r"problems\s+samples\s+correct\s+unparsed\s+curated\s+time", run.stdout)
    assert "curated examples" in run.stdout and str(out) in run.stdout
    assert re.search(r"origin\s+verdict\s+samples\s+mean reward\s+mean ppl\s+mean tokens", run.stdout)
    assert re.search(r"learner_sample\s+correct\s+\d+\s+-?\d+\.\d+\s+\d+\.\d+", run.stdout), run.stdout

    examples = [json.loads(line) for line in out.read_text().splitlines()]
    assert examples, "no correct learner sample was curated"
    answers = {p.question: p.reference_answer
               for p in from_reasoning_gym("basic_arithmetic", 8, seed=0, options=EASY_ARITHMETIC)}
    demonstrated = {solution for _, solution in DEMONSTRATIONS}
    for example in examples:
        question, solution = example["messages"][-2]["content"], example["messages"][-1]["content"]
        assert example["model"] == "smollm2-135m-instruct" and example["origin"] == "learner_sample"
        assert solution not in demonstrated  # written by the model, not copied from its prompt
        final = re.findall(r"Final answer:\s*(-?\d+)", solution, flags=re.IGNORECASE)
        assert final and final[-1] == answers[question], solution
        scores = example["scores"]
        assert scores["verdict"] == "correct"
        # Quality and compatibility measured by real models.
        assert scores["reward_model"] == "learnerfit-reward-minilm-v1" and isinstance(scores["reward"], float)
        assert scores["drift_checkpoint"] == "base" and 1 < scores["ppl"] < 1000
        assert len(scores["segment_ppl"]) == 4 and len(scores["top_loss_tokens"]) == 8
    # Every service was stopped: nothing is left listening in the stack's directory.
    assert not (tmp_path / "stack" / "stack.json").exists()
