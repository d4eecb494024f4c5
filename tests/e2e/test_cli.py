"""The CLI's stack commands against a tiny learner (right on 1 + 1 only): up, submit, status, export, down."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from learnerfit.registry.store import CheckpointRegistry
from learnerfit.v1 import records_pb2


def _cli(stack_dir, *args, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "learnerfit.cli", "--dir", str(stack_dir), *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture()
def running_stack(tiny_solver, tmp_path):
    stack_dir = tmp_path / "stack"
    # Options after the command, and a registry of the test's own.
    up = _cli(stack_dir, "up", "--model", str(tiny_solver), "--registry", str(tmp_path / "registry"))
    assert up.returncode == 0, up.stderr[-2000:]
    yield stack_dir
    _cli(stack_dir, "down")


def test_up_submit_status_export_down(running_stack, tmp_path):
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"question": f"Calculate {i} + 1.", "answer": str(i + 1)}) + "\n"
                                for i in range(3)))
    batch = ("--file", str(problems), "--samples", "2", "--max-new-tokens", "16")
    submit = _cli(running_stack, "submit", *batch)
    assert submit.returncode == 0, submit.stderr[-2000:]
    batch_id = submit.stdout.strip()
    assert batch_id.startswith("batch-")

    again = _cli(running_stack, "submit", *batch)
    assert again.stdout.strip() == batch_id and "already submitted" in again.stderr

    status = _cli(running_stack, "status", batch_id, "--watch", "--timeout", "120")
    assert status.returncode == 0, status.stderr[-2000:]
    reported = json.loads(status.stdout)
    assert reported["state"] == "BATCH_STATE_COMPLETE"
    assert (reported["samples_scored"], reported["problems_decided"]) == (6, 3)
    assert (reported["samples_correct"], reported["curated"]) == (2, 1)  # 1 + 1 = 2, twice; one kept

    out = tmp_path / "out.jsonl"
    export = _cli(running_stack, "export", batch_id, "-o", str(out))
    assert export.returncode == 0, export.stderr[-2000:]
    [example] = [json.loads(line) for line in out.read_text().splitlines()]
    assert example["messages"][-2]["content"] == "Calculate 1 + 1." and example["scores"]["verdict"] == "correct"

    logs = {p.name for p in (running_stack / "logs").iterdir()}
    assert {"trainer.log", "registry.log", "gateway.log", "broker.log"} <= logs
    down = _cli(running_stack, "down")
    # gateway, generator, two scorers, two Oracle services, curator, trainer, registry
    assert down.returncode == 0 and "stopped 9 services" in down.stderr
    assert not (running_stack / "stack.json").exists()


def test_commands_explain_a_missing_stack_and_bad_options(tmp_path):
    missing = _cli(tmp_path / "none", "status", "batch-x")
    assert missing.returncode == 1 and "learnerfit up" in missing.stderr
    bad_family = _cli(tmp_path / "none", "submit", "--gateway", "127.0.0.1:1", "--family", "no_such_family")
    assert bad_family.returncode == 1 and "no_such_family" in bad_family.stderr
    bad_file = tmp_path / "bad.jsonl"
    bad_file.write_text('{"question": "1+1"}\n')
    rejected = _cli(tmp_path / "none", "submit", "--gateway", "127.0.0.1:1", "--file", str(bad_file))
    assert rejected.returncode == 1 and "bad.jsonl:1" in rejected.stderr and "answer" in rejected.stderr
    bad_oracle = _cli(tmp_path / "none", "submit", "--gateway", "127.0.0.1:1", "--oracle", "refine,polish")
    assert bad_oracle.returncode == 2 and "unknown Oracle mode(s) polish" in bad_oracle.stderr


def test_checkpoints_alone_lists_and_options_work_before_or_after_the_command(tmp_path):
    empty = tmp_path / "registry"
    for args in (("checkpoints", "--registry", str(empty)), ("checkpoints", "list", "--registry", str(empty))):
        listed = _cli(tmp_path, *args)
        assert listed.returncode == 0 and f"no checkpoints in {empty}" in listed.stderr, listed.stderr
    moved = subprocess.run([sys.executable, "-m", "learnerfit.cli", "status", "batch-x", "--dir", str(tmp_path / "d")],
                           capture_output=True, text=True, timeout=60)
    assert moved.returncode == 1 and str(tmp_path / "d" / "stack.json") in moved.stderr


def test_prompts_show_prints_the_templates_the_oracle_gets(tmp_path):
    from learnerfit.domain.oracle.prompts import all_templates

    listed = _cli(tmp_path, "prompts")
    assert listed.returncode == 0 and "rewrite.v1" in listed.stdout
    shown = _cli(tmp_path, "prompts", "show")
    assert shown.returncode == 0
    for template in all_templates().values():
        assert f"=== {template.id} ({template.path.name}" in shown.stdout
        assert template.user in shown.stdout and template.system in shown.stdout
    one = _cli(tmp_path, "prompts", "show", "rewrite.v1")
    assert one.stdout.count("=== ") == 1 and "{style_card}" in one.stdout
    unknown = _cli(tmp_path, "prompts", "show", "polish")
    assert unknown.returncode == 1 and "no prompt template 'polish'" in unknown.stderr


def test_stream_feeds_chunks_trains_every_n_curated_and_drains_at_the_end(tiny_solver, tmp_path):
    """A file of 12 problems in chunks of 2, each chunk with a 1 + 1 the tiny learner gets right: curated examples
    keep coming, the trainer trains every 4 of them, and the stream stops once the file is through and drained:
    the batches settled, and the 2 examples past the last multiple of 4 trained on too."""
    problems = tmp_path / "problems.jsonl"
    rows = [{"question": q, "answer": a} for i in range(6)
            for q, a in (("Calculate 1 + 1.", "2"), (f"Calculate {i + 2} + 1.", str(i + 3)))]
    problems.write_text("".join(json.dumps(row) + "\n" for row in rows))
    registry = tmp_path / "registry"
    stream = _cli(tmp_path / "stack", "stream", "--model", str(tiny_solver), "--registry", str(registry),
                  "--file", str(problems), "--count", "2", "--samples", "2", "--max-new-tokens", "16",
                  "--train-every", "4", "--report-every", "1", "--eval-problems", "16", "--eval-k", "4",
                  timeout=600)
    assert stream.returncode == 0, stream.stderr[-3000:]
    last = stream.stdout.strip().splitlines()[-1]
    assert "submitted 12 · settled 12 · in flight 0" in last, last
    assert "curated 6 · trained on 6 · dead-lettered 0" in last, last
    assert "learner accuracy by checkpoint: base" in last
    assert "v1 promoted (gate)" in stream.stderr and " · learner v" in last  # each decision said, the learner shown
    listed = _cli(tmp_path, "checkpoints", "--registry", str(registry))
    assert "v1" in listed.stdout, listed.stdout + listed.stderr
    trained = [eid for checkpoint in CheckpointRegistry(registry).list() for eid in checkpoint.example_ids]
    assert len(trained) == len(set(trained)) == 6, "each curated example in exactly one checkpoint"
    # Each checkpoint went through the promotion gate (the tiny learner is wrong on every held-out problem, before
    # and after: not worse, so promoted).
    decided = [(c.promotion.state, c.promotion.decided_by) for c in CheckpointRegistry(registry).list()]
    assert decided and set(decided) == {(records_pb2.PROMOTION_STATE_PROMOTED, "gate")}, decided


def test_stream_refuses_a_held_out_set_too_small_for_the_promotion_gate_before_starting_anything(tmp_path):
    stream = _cli(tmp_path, "stream", "--eval-problems", "2", "--eval-k", "1", "--count", "2")
    assert stream.returncode == 1 and "--eval-problems" in stream.stderr, stream.stderr[-2000:]
    assert "2 held-out samples; the promotion gate needs at least 64" in stream.stderr and "--no-gate" in stream.stderr
    assert not (tmp_path / ".learnerfit").exists()
