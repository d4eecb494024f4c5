"""New trajectories derived by the Oracle: stable ids, origin, mode, parent, model, prompt versions, style."""

from __future__ import annotations

from learnerfit.domain.ids import stable_id
from learnerfit.domain.records import split_steps
from learnerfit.domain.style import style_measures
from learnerfit.v1 import records_pb2


def derived_trajectory(problem: records_pb2.Problem, origin: int, mode: int, model: str, text: str,
                       prompt_ids: list[str], parent: records_pb2.Trajectory | None = None, completion_tokens: int = 0,
                       notes: dict[str, str] | None = None) -> records_pb2.Trajectory:
    parent_id = parent.id if parent is not None else ""
    return records_pb2.Trajectory(
        # Defined by what produced it: a replayed input yields the same id, and downstream drops the copy.
        id=stable_id("traj", problem.batch_id, problem.id, origin, model, parent_id, *prompt_ids),
        problem=problem, origin=origin, oracle_mode=mode, parent_id=parent_id, model=model, text=text,
        steps=split_steps(text), completion_tokens=completion_tokens, prompt_ids=prompt_ids,
        style=style_measures(text, parent.text if parent is not None else None), metadata=notes or {},
    )
