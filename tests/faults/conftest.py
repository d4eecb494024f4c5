"""The fault tests run on the shared tiny stack (tests/conftest.py: tiny_pipeline); the outcome of a batch run on it
without a fault is what each trial is compared with."""

from __future__ import annotations

import pytest

from tests.faults.batches import submit, tally, wait_complete


@pytest.fixture(scope="package")
def stack(tiny_pipeline):
    return tiny_pipeline


@pytest.fixture(scope="package")
def reference(stack):
    """The fault tests' problems without a fault."""
    batch_id = submit(stack, "reference")
    wait_complete(stack, batch_id)
    outcome = tally(stack, batch_id)
    assert outcome["curated"], "the reference curates nothing: the trials would compare nothing"
    return outcome
