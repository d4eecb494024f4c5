"""`learnerfit study` end to end on the local stack (real broker, every service a process, the rule-based teacher as
the Oracle, the tiny learner that answers "1 + 1 = 2" to anything): interrupted while it trains, resumed, and its
report rendered in headless Chromium.

The tiny learner is right on 1 + 1 only, so rejection sampling keeps one problem and the teacher's solutions cover all
four; the teacher's rewrite of "1 + 1 = 2" is that same text, collapsed into the learner's sample as a near-duplicate,
so style_aligned curates nothing: a policy with an empty set, reported and not trained.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from learnerfit.registry.store import CheckpointRegistry

POLICIES = ["rejection_sampling", "oracle_synthesized", "style_aligned"]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _study(tiny_solver: Path, problems: Path, out: Path, workdir: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "learnerfit.cli", "study", "--problems", str(problems), "--n", "4", "--k", "2",
               "--model", str(tiny_solver), "--out", str(out), "--policies", ",".join(POLICIES),
               "--budget-steps", "4", "--eval-problems", "2", "--eval-k", "2", "--max-new-tokens", "24"]
    return subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _state(out: Path) -> dict:
    try:
        return json.loads((out / "study.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


@pytest.fixture(scope="module")
def study(tiny_solver, tmp_path_factory):
    """A study interrupted (SIGINT) once the base model is scored and a policy is training, then run again to the
    end. Returns (folder, what the interrupted run recorded, the second run's output)."""
    workdir = tmp_path_factory.mktemp("study")
    problems = workdir / "problems.jsonl"
    problems.write_text("".join(json.dumps({"question": f"Calculate {i} + 1.", "answer": str(i + 1)}) + "\n"
                                for i in range(4)))
    out = workdir / "out"
    first = _study(tiny_solver, problems, out, workdir)
    deadline = time.monotonic() + 400
    while "base" not in _state(out).get("training", {}) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    first.send_signal(signal.SIGINT)
    first_output, _ = first.communicate(timeout=120)
    interrupted = _state(out)
    assert first.returncode == 130, first_output[-3000:]
    candidates_before = (out / "candidates.jsonl").read_bytes()

    second = _study(tiny_solver, problems, out, workdir)
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 0, output[-3000:]
    assert (out / "candidates.jsonl").read_bytes() == candidates_before
    return out, interrupted, output


def test_an_interrupted_study_resumes_without_redoing_finished_phases_or_training_twice(study):
    out, interrupted, output = study
    # The interruption came while it trained: curation and selection done, training not.
    assert set(interrupted["phases"]) == {"curate", "select"}
    assert "curate: done in an earlier run, kept" in output and "select: done in an earlier run, kept" in output
    assert "stack up" in output  # training needs the services again
    state = _state(out)
    assert set(state["phases"]) == {"curate", "select", "train", "report"}

    sets = {p: [json.loads(line)["id"] for line in (out / "sets" / f"{p}.jsonl").read_text().splitlines()]
            for p in POLICIES}
    assert len(sets["rejection_sampling"]) == 1 and len(sets["oracle_synthesized"]) == 4
    assert sets["style_aligned"] == [] and not set(sets["rejection_sampling"]) & set(sets["oracle_synthesized"])
    # One checkpoint per policy with examples, each trained on exactly its set: nothing trained twice over two runs.
    checkpoints = CheckpointRegistry(out / "registry").list()
    assert sorted(c.policy for c in checkpoints) == ["oracle_synthesized", "rejection_sampling"]
    for checkpoint in checkpoints:
        assert sorted(checkpoint.example_ids) == sorted(sets[checkpoint.policy])
        assert state["training"][checkpoint.policy]["version"] == checkpoint.version
        assert set(checkpoint.eval) == {"avg@2"}
    assert set(state["training"]["base"]) == {"avg@2"}


def test_each_policy_set_is_saved_as_a_dataset_with_a_card(study):
    from datasets import load_from_disk

    out, _, _ = study
    for policy in POLICIES:
        ids = [json.loads(line)["id"] for line in (out / "sets" / f"{policy}.jsonl").read_text().splitlines()]
        if ids:
            dataset = load_from_disk(str(out / "datasets" / policy))
            assert dataset["id"] == ids and all(m[-1]["role"] == "assistant" for m in dataset["messages"])
        card = (out / "datasets" / policy / "README.md").read_text()
        header = dict(line.split(": ", 1) for line in card.split("---\n")[1].splitlines())
        assert json.loads(header["policy"]) == policy and json.loads(header["examples"]) == len(ids)
        assert json.loads(header["problems_in_study"]) == 4


def test_the_report_renders_in_headless_chromium_with_paragraph_tables_and_every_plot(study, tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed: `make browser` installs it (make test does)"
    out, _, _ = study
    page = (out / "report.html").resolve().as_uri()
    flags = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2400",
             "--virtual-time-budget=10000"]
    shot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", page], check=True, capture_output=True, timeout=120)
    dom = subprocess.run([*flags, "--dump-dom", page], check=True, capture_output=True, text=True, timeout=120).stdout
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000

    from html.parser import HTMLParser

    class Page(HTMLParser):
        def __init__(self):
            super().__init__()
            self.ids, self.body, self.rows, self.table, self.text = set(), {}, {}, None, {}

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            self.ids.add(attrs.get("id"))
            if tag == "body":
                self.body = attrs
            if tag == "table":
                self.table = attrs.get("id")
            if tag == "tr" and self.table:
                self.rows[self.table] = self.rows.get(self.table, 0) + 1

        def handle_data(self, data):
            if self.lasttag == "p":
                self.text["p"] = self.text.get("p", "") + data

    parsed = Page()
    parsed.feed(dom)
    assert {"summary", "policies", "correlations", "checkpoints", "settings"} <= parsed.ids
    assert parsed.rows["policies"] == 1 + len(POLICIES)  # header and one row per policy
    plots = {"plot-reward_vs_ppl", "plot-accuracy", "plot-segment_ppl", "plot-top_loss_tokens", "plot-latex_density"}
    assert plots <= parsed.ids
    assert parsed.body.get("data-plots-drawn") == str(len(plots)), "a plot did not decode in the browser"
    assert "the base model" in dom and "held-out" in dom and "not trained" in dom  # style_aligned's empty set
