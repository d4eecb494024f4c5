"""`stream` and `study` against a stack that runs elsewhere, given only its addresses: they start no stack of their
own, reach the services over gRPC and the broker by its address, and count only what they submitted."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from learnerfit.cli.addresses import CALLABLE, target_flag
from learnerfit.local.stack import StackState


def _cli(cwd, *args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "learnerfit.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def remote(tiny_solver, tmp_path_factory):
    """A stack started by `learnerfit up` in a folder of its own: to the commands under test, addresses only."""
    home = tmp_path_factory.mktemp("cluster")
    up = _cli(home, "--dir", str(home / "stack"), "up", "--model", str(tiny_solver), "--registry",
              str(home / "registry"), "--eval-problems", "2", "--eval-k", "1")
    assert up.returncode == 0, up.stderr[-2000:]
    state = StackState.load(home / "stack")
    targets = {name: state.services[name].grpc_target for name in CALLABLE}
    yield targets, state.bootstrap_servers
    _cli(home, "--dir", str(home / "stack"), "down")


def _flags(targets, bootstrap_servers, services) -> list[str]:
    return [*(x for s in services for x in (target_flag(s), targets[s])), "--bootstrap-servers", bootstrap_servers]


def _problems(folder, pairs: int):
    """Pairs of problems: a 1 + 1 the tiny learner gets right, and one it gets wrong."""
    path = folder / "problems.jsonl"
    rows = [{"question": q, "answer": a} for i in range(pairs)
            for q, a in (("Calculate 1 + 1.", "2"), (f"Calculate {i + 2} + 1.", str(i + 3)))]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_two_streams_on_a_running_stack_each_count_and_train_only_their_own(remote, tmp_path):
    targets, servers = remote
    problems = _problems(tmp_path, 2)
    for attempt in (1, 2):  # the second stream finds the first one's records on the topics, and leaves them out
        stream = _cli(tmp_path, "stream", *_flags(targets, servers, ("gateway", "trainer")), "--file", str(problems),
                      "--count", "2", "--samples", "2", "--max-new-tokens", "16", "--seed", str(attempt),
                      "--report-every", "1")
        assert stream.returncode == 0, stream.stderr[-3000:]
        assert "streaming to the running stack at gateway" in stream.stderr and "stack up" not in stream.stderr
        last = stream.stdout.strip().splitlines()[-1]
        assert "submitted 4 · settled 4 · in flight 0" in last, last
        # Each stream: 2 chunks, the 1 + 1 in each curated (the tiny learner is right on it), both trained on at the
        # drain (the running stack's trainer trains only when asked).
        assert "curated 2 · trained on 2 · dead-lettered 0" in last, (attempt, last)
    assert not (tmp_path / ".learnerfit").exists()  # no local stack was started here


def test_a_study_on_a_running_stack_trains_one_checkpoint_per_arm_there(remote, tmp_path):
    targets, servers = remote
    out = tmp_path / "study"
    # A set the study writes itself (teacher_bare) is scored by the running stack's reward and drift scorers.
    study = _cli(tmp_path, "study", *_flags(targets, servers, CALLABLE),
                 "--problems", str(_problems(tmp_path, 3)), "--n", "4", "--k", "2", "--policies",
                 "rejection_sampling,utility,teacher_bare", "--max-new-tokens", "16", "--eval-problems", "1",
                 "--eval-k", "2", "--out", str(out))
    assert study.returncode == 0, study.stderr[-3000:]
    assert "study on the running stack at gateway" in study.stderr and "stack up" not in study.stderr
    state = json.loads((out / "study.json").read_text())
    checkpoints = {run: row["version"] for run, row in state["training"].items() if run != "base"}
    assert set(checkpoints) == {"rejection_sampling.seed0", "utility.seed0", "teacher_bare.seed0"}, state
    listed = _cli(tmp_path, "checkpoints", "--registry-target", targets["registry"], "list")
    assert listed.returncode == 0, listed.stderr
    for version in checkpoints.values():  # registered by the running stack's trainer, in its registry
        assert re.search(rf"^\s*{version}(?: \*)?\s+adapter", listed.stdout, flags=re.MULTILINE), listed.stdout
    # Evaluated there on the study's own held-out problem (the file's rows after the first 4, less the 1 + 1 it
    # trains on): what it trained on is not what it is scored on.
    assert state["held_out"]["problems"] == 1 and state["held_out"]["shared_with_training"] == 0
    assert (out / "report.html").is_file()
