"""Kill -9 trials: while batches flow through the local stack (the tiny learner), a seeded random stage is
SIGKILLed at a seeded moment inside the window in which it holds work, and restarted; what comes out is compared
by id against the same problems run without a fault (tests/faults/batches.py: tally):
* lost: a problem with no decision, or a curated decision without its example;
* duplicated: a problem with a second distinct decision or example id, or a second record of its decision (a
  decision is published last and every curator folds the decisions before deciding, so any second record of one
  is a second decision); a redelivered copy of an example (a curator killed between its example and its decision)
  is at-least-once delivery, recognised downstream by id, and counted apart as copies;
* contradicting: two records with one id but different content, an example its decision did not choose, or an
  outcome that differs from the fault-free run's (which problems are curated, with which solution).

`make test` runs FAULT_TRIALS trials (default 3); `make test-faults` runs FAULT_TRIALS_PER_STAGE per stage.
"""

from __future__ import annotations

import os
import random

import pytest

from tests.faults.batches import PROBLEMS, STAGES, kill_while_holding, submit, tally, wait_complete

SEED = int(os.environ.get("FAULT_SEED", "20261127"))
PER_STAGE = int(os.environ.get("FAULT_TRIALS_PER_STAGE", "0"))
TRIALS = [(stage, i) for stage in STAGES for i in range(PER_STAGE)] if PER_STAGE else \
    [(STAGES[(SEED + i) % len(STAGES)], i) for i in range(int(os.environ.get("FAULT_TRIALS", "3")))]


@pytest.mark.parametrize(("stage", "trial"), TRIALS, ids=[f"{s}-{i}" for s, i in TRIALS])
def test_a_stage_killed_mid_stream_loses_nothing_and_decides_nothing_twice(stack, reference, stage, trial):
    rng = random.Random(f"{SEED}-{stage}-{trial}")
    jitter_s = rng.uniform(0.0, 0.1)  # a seeded moment inside the window in which the stage holds work
    batch_id, at_kill, delay_s = kill_while_holding(
        stack, stage, stage, lambda attempt: submit(stack, f"trial-{SEED}-{stage}-{trial}-{attempt}"), jitter_s)
    stack.restart(stage)
    wait_complete(stack, batch_id)
    got = tally(stack, batch_id)
    print(f"trial {stage}#{trial}: killed after {delay_s:.1f}s (generated {at_kill.samples_generated}, scored "
          f"{at_kill.samples_scored}, decided {at_kill.problems_decided} of {PROBLEMS}); {got}")
    assert (got["lost"], got["duplicated"], got["contradicting"], got["decision_copies"]) == (0, 0, 0, 0), got
    assert got["decided"] == PROBLEMS
    # Same problems, same outcome as without the fault: which problems are curated, with which solution.
    assert got["curated"] == reference["curated"]
