"""Shared fixtures: a real Tansu broker per test session, a tiny random model, fresh topic names."""

from __future__ import annotations

import itertools
import os
import uuid
from pathlib import Path

import pytest

from learnerfit.local.broker import TansuBroker
from learnerfit.runtime.bus import Bus

_counter = itertools.count()
# Modules that run for minutes (a real model, a whole stack), first: `make test` runs two workers (pytest-xdist), and a
# long module left to the end runs alone while the other worker idles. Within each rank, the order is collection's.
_LONG_DIRS = ("e2e", "faults", "bench", "deploy")


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        if item.get_closest_marker("slow"):
            return 0
        return 1 if Path(item.path).parent.name in _LONG_DIRS else 2

    items.sort(key=rank)



@pytest.fixture(scope="session")
def broker():
    with TansuBroker() as running:
        yield running


@pytest.fixture()
def bus(broker):
    client = Bus(broker.bootstrap_servers, client_id=f"test-{next(_counter)}", session_timeout_ms=6000)
    yield client
    client.close()


@pytest.fixture()
def fresh():
    """A unique name for this test's topics and groups (Tansu joins a new group fastest)."""
    tag = uuid.uuid4().hex[:8]
    return lambda name: f"{name}-{tag}"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_solver(tiny_model, tmp_path_factory) -> Path:
    """The tiny model taught to answer "1 + 1 = 2 / Final answer: 2" to anything: right on 1 + 1 only."""
    from tests.tiny_model import teach_one_answer

    return teach_one_answer(tiny_model, tmp_path_factory.mktemp("tiny-solver"))


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    # Tests share two cores with the service processes they start.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def reward_model_dir() -> Path:
    """The local reward model (trained once per cache, ~1 min; `make` builds it before the tests)."""
    from learnerfit.paths import default_cache_dir
    from trainer.reward_model import ensure_reward_model

    return ensure_reward_model(default_cache_dir())


# The longest question the reward scorer of the shared tiny stack takes: shorter than the gateway's limit, so a long
# question passes intake and generation and its samples are dead-lettered at scoring (a permanent failure mid-way).
LONGEST_SCORED_QUESTION = 60


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_solver, tmp_path_factory):
    """The local stack with the tiny learner, every service a process, 4 partitions per topic (so stages can run
    as replicas); shared by the end-to-end and fault tests, which put it back as they found it."""
    from tests.stacks import tiny_stack

    local = tiny_stack(tmp_path_factory.mktemp("stack"), tiny_solver, tmp_path_factory.mktemp("registry"),
                       tmp_path_factory.mktemp("registry-served"),
                       reward_scorer={"intake": {"max_question_chars": LONGEST_SCORED_QUESTION}})
    local.common = {"bus": {"topic_partitions": 4}}
    local.start()
    yield local
    local.stop()
