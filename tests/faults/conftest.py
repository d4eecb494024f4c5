"""One local stack for the fault tests (the tiny learner; 4 partitions per topic, so stages can run as replicas),
and the outcome of a batch run on it without a fault."""

from __future__ import annotations

import pytest

from tests.faults.batches import submit, tally, wait_complete
from tests.stacks import tiny_stack


@pytest.fixture(scope="package")
def stack(tiny_solver, tmp_path_factory):
    local = tiny_stack(tmp_path_factory.mktemp("stack"), tiny_solver, tmp_path_factory.mktemp("registry"),
                       tmp_path_factory.mktemp("registry-served"))
    local.common = {"bus": {"topic_partitions": 4}}
    local.start()
    yield local
    local.stop()


@pytest.fixture(scope="package")
def reference(stack):
    """The fault tests' problems without a fault."""
    batch_id = submit(stack, "reference")
    wait_complete(stack, batch_id)
    outcome = tally(stack, batch_id)
    assert outcome["curated"], "the reference curates nothing: the trials would compare nothing"
    return outcome
