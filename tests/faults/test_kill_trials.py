"""Kill -9 trials: while batches flow through the local stack (the tiny learner), a stage picked by the seed is
SIGKILLed while it holds work of a batch, and restarted; what comes out is compared
by id against the same problems run without a fault (tests/faults/batches.py: tally):
* lost: a problem with no decision, or a curated decision without its example;
* duplicated: a problem with a second distinct decision or example id, or a second record of its decision (a
  decision is published last and every curator folds the decisions before deciding, so any second record of one
  is a second decision); a redelivered copy of an example (a curator killed between its example and its decision)
  is at-least-once delivery, recognised downstream by id, and counted apart as copies;
* contradicting: two records with one id but different content, an example its decision did not choose, or an
  outcome that differs from the fault-free run's (which problems are curated, with which solution).

Each trial stops the stage at a pause point (learnerfit/runtime/faults.py) inside its work on the batch (a stage:
its inputs processed, nothing of them published; the gateway: the batch published, the client not answered), so the
kill lands there every time. `make test` runs FAULT_TRIALS trials (default 2; stages picked by the seed, the day's
by default); `make test-faults` runs FAULT_TRIALS_PER_STAGE per stage.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.faults.batches import PAUSE_POINTS, PROBLEMS, STAGES, kill_at_pause, submit, tally, wait_complete

# The seed picks which stages `make test`'s few trials kill: by default the day's, so that successive runs cycle
# through every stage (FAULT_SEED=N repeats one; it is in each trial's id).
SEED = int(os.environ.get("FAULT_SEED", str(int(time.time() // 86400))))
PER_STAGE = int(os.environ.get("FAULT_TRIALS_PER_STAGE", "0"))
FEW = int(os.environ.get("FAULT_TRIALS", "2"))  # make test's: successive days cycle them through every stage
TRIALS = [(stage, i) for stage in STAGES for i in range(PER_STAGE)] if PER_STAGE else \
    [(STAGES[(SEED * FEW + i) % len(STAGES)], i) for i in range(FEW)]


@pytest.mark.parametrize(("stage", "trial"), TRIALS, ids=[f"{s}-{i}-seed{SEED}" for s, i in TRIALS])
def test_a_stage_killed_mid_stream_loses_nothing_and_decides_nothing_twice(stack, reference, stage, trial, tmp_path,
                                                                          monkeypatch):
    started = time.monotonic()
    batch_id = kill_at_pause(stack, stage, lambda: submit(stack, f"trial-{SEED}-{stage}-{trial}"), tmp_path,
                             monkeypatch)
    wait_complete(stack, batch_id)
    got = tally(stack, batch_id)
    print(f"trial {stage}#{trial} (seed {SEED}): killed at {PAUSE_POINTS[stage]}, complete after "
          f"{time.monotonic() - started:.1f}s; {got}")
    assert (got["lost"], got["duplicated"], got["contradicting"], got["decision_copies"]) == (0, 0, 0, 0), got
    assert got["decided"] == PROBLEMS
    # Same problems, same outcome as without the fault: which problems are curated, with which solution.
    assert got["curated"] == reference["curated"]
