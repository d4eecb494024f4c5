"""`learnerfit study` end to end on the local stack (real broker, every service a process, the rule-based teacher as
the Oracle, the tiny learner that answers "1 + 1 = 2" to anything): interrupted while it trains, resumed, and its
report rendered in headless Chromium.

The tiny learner is right on 1 + 1 only, so rejection sampling keeps one problem and the teacher's solutions cover all
four; the teacher's rewrite of "1 + 1 = 2" is that same text, collapsed into the learner's sample as a near-duplicate,
so style_aligned curates nothing: an arm with an empty set, reported and not trained. The study writes three sets
itself (the format-only control, the teacher's bare and latex registers), scored by the reward and drift scorers as
candidates are; every trained arm gets two checkpoints, one per training seed.
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

POLICIES = ["rejection_sampling", "oracle_synthesized", "style_aligned", "format_only", "teacher_bare", "teacher_latex"]
TRAINED = ["rejection_sampling", "oracle_synthesized", "format_only", "teacher_bare", "teacher_latex"]
SEEDS = 2
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _study(tiny_solver: Path, problems: Path, out: Path, workdir: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "learnerfit.cli", "study", "--problems", str(problems), "--n", "4", "--k", "2",
               "--model", str(tiny_solver), "--out", str(out), "--policies", ",".join(POLICIES),
               "--budget-steps", "4", "--eval-problems", "2", "--eval-k", "2", "--max-new-tokens", "24",
               "--seeds", str(SEEDS)]
    # SIGINT back to its default in the child: a test run started in the background (a CI job, `make test &`)
    # inherits SIGINT ignored, and Python keeps an ignored SIGINT ignored, so Ctrl-C would never reach the study.
    return subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
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
    # The study's 4 problems, then 3 more: the held-out set is the file's rows after the first --n, less any whose
    # question a study problem shares (the fifth row repeats the first's, in other case and spacing).
    rows = [(f"Calculate {i} + 1.", str(i + 1)) for i in range(4)] + [("calculate 0  + 1", "1")] + \
        [(f"Calculate {i} + 1.", str(i + 1)) for i in (4, 5)]
    problems.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in rows))
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
    # The style-aligned rewrite that equals the learner's sample is counted, not just dropped.
    assert state["phases"]["select"]["rewrites"] >= 1
    assert state["phases"]["select"]["rewrites_equal_to_parent"] == state["phases"]["select"]["rewrites"]
    # The sets the study writes itself, for each of the 4 study problems, each scored as candidates are.
    texts = {arm: sorted(_solutions(out, arm)) for arm in ("format_only", "teacher_bare", "teacher_latex")}
    assert texts["format_only"] == [f"Final answer: {i + 1}" for i in range(4)]
    assert texts["teacher_bare"] == [f"{i} + 1 = {i + 1}\nFinal answer: {i + 1}" for i in range(4)]
    assert all("\\boxed{" in text for text in texts["teacher_latex"])
    for arm in texts:
        for row in (out / "sets" / f"{arm}.jsonl").read_text().splitlines():
            scores = json.loads(row)["scores"]
            assert scores["verdict"] == "VERDICT_CORRECT" and scores["driftCheckpoint"] == "base"
            assert scores["ppl"] > 1 and "reward" in scores and scores["tokenCount"] > 0
    # One checkpoint per arm with examples and per training seed, each trained on exactly its set with its seed:
    # nothing trained twice over two runs.
    checkpoints = CheckpointRegistry(out / "registry").list()
    assert sorted((c.policy, c.training.seed) for c in checkpoints) == \
        sorted((arm, seed) for arm in TRAINED for seed in range(SEEDS))
    for checkpoint in checkpoints:
        assert sorted(checkpoint.example_ids) == sorted(sets[checkpoint.policy])
        run = state["training"][f"{checkpoint.policy}.seed{checkpoint.training.seed}"]
        assert run["version"] == checkpoint.version and checkpoint.training.start_from == "base"
        assert checkpoint.training.steps == 4 and run["steps"] == 4
        assert not checkpoint.eval  # the trainer's own held-out set is off: the study evaluates on its own
    # The two seeds of one set are two different checkpoints.
    probes = {(c.policy, c.training.seed): json.loads(Path(c.uri, "probe.json").read_text())["logprobs"]
              for c in checkpoints}
    assert probes[("oracle_synthesized", 0)] != probes[("oracle_synthesized", 1)]
    # The base and each checkpoint, on the study's held-out problems: rows 5 and 6, disjoint from what it trained on.
    held_out = [json.loads(line) for line in (out / "held-out.jsonl").read_text().splitlines()]
    assert [p["question"] for p in held_out] == ["Calculate 4 + 1.", "Calculate 5 + 1."]
    assert state["held_out"] == {"source": "problems.jsonl, the rows after the first 4", "problems": 2,
                                 "left_out_for_overlap": 1, "shared_with_training": 0}
    for name in ("base", *(f"{arm}.seed{seed}" for arm in TRAINED for seed in range(SEEDS))):
        evaluation = state["training"][name]["eval"] if name != "base" else state["training"]["base"]
        assert set(evaluation) == {"avg@2", "unparsed", "truncated", "parsed_accuracy", "first_answer_accuracy"}
        samples = [json.loads(line) for line in (out / "eval" / f"{name}.jsonl").read_text().splitlines()]
        assert sorted((s["problemId"], s.get("sampleIndex", 0)) for s in samples) == \
            sorted((p["id"], i) for p in held_out for i in range(2))
        correct = sum(s.get("verdict") == "VERDICT_CORRECT" for s in samples)
        assert evaluation["avg@2"] == correct / 4  # Avg@k is the share of exactly these samples
        assert evaluation["unparsed"] == sum(s.get("verdict") == "VERDICT_UNPARSED" for s in samples) / 4


def _solutions(out: Path, arm: str) -> list[str]:
    return [json.loads(line)["messages"][-1]["content"]
            for line in (out / "sets" / f"{arm}.jsonl").read_text().splitlines()]


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
    assert {"summary", "policies", "pairs", "correlations", "checkpoints", "settings"} <= parsed.ids
    assert parsed.rows["policies"] == 1 + len(POLICIES)  # header and one row per arm
    # Six arms evaluated (the base and five trained): fifteen pairs, each with its Holm-adjusted p and power.
    assert parsed.rows["pairs"] == 1 + 15 and "rejection_sampling - base" in dom and "Holm" in dom
    assert parsed.rows["checkpoints"] == 1 + len(TRAINED) * SEEDS
    assert "format-only control (the answer line alone) reached" in dom
    assert "2 training seeds per arm" in dom and "what this size can resolve is unknown" in dom  # all 0: no spread
    assert "dose of drift with correctness fixed: bare (learner ppl" in dom
    assert "equal the learner sample they rewrote" in dom
    plots = {"plot-reward_vs_ppl", "plot-accuracy", "plot-segment_ppl", "plot-top_loss_tokens", "plot-latex_density"}
    assert plots <= parsed.ids
    assert parsed.body.get("data-plots-drawn") == str(len(plots)), "a plot did not decode in the browser"
    assert "the base model" in dom and "held-out" in dom and "not trained" in dom  # style_aligned's empty set
