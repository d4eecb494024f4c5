"""The local stack with the tiny learner, shared by the end-to-end and fault tests."""

from __future__ import annotations

from pathlib import Path

from learnerfit.local.stack import LocalStack


def tiny_stack(directory: Path, tiny_solver: Path, registry_dir: Path, served_registry_dir: Path,
               **extra: dict) -> LocalStack:
    """Every service as its own process; the tiny learner samples, is measured for drift and is the (weak)
    Oracle; the reward model is the real one. Not started."""
    learner = {"learner": {"model": str(tiny_solver)}}
    config = {
        "generator": learner, "drift_scorer": learner,
        "refiner": {"oracle": {"model": str(tiny_solver), "max_new_tokens": 16}},
        "style_aligner": {**learner, "oracle": {"model": str(tiny_solver), "max_new_tokens": 16}},
        "trainer": {"registry_dir": str(registry_dir), "train_every": 0},
        "registry": {"registry_dir": str(served_registry_dir)}}
    for service, settings in extra.items():
        config[service] = {**config.get(service, {}), **settings}
    return LocalStack(directory, start_timeout_s=180, config=config)
