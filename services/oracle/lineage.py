"""New trajectories derived by the Oracle: stable ids, origin, parent, model, prompt version, style measures."""

from __future__ import annotations

from learnerfit.v1 import records_pb2
from services.common.ids import stable_id
from services.common.style import style_measures
from services.common.trajectories import split_steps


def derived_trajectory(problem: records_pb2.Problem, origin: int, model: str, text: str, prompt_ids: list[str],
                       parent: records_pb2.Trajectory | None = None, completion_tokens: int = 0,
                       extra: dict[str, str] | None = None) -> records_pb2.Trajectory:
    parent_id = parent.id if parent is not None else ""
    trajectory = records_pb2.Trajectory(
        # Defined by what produced it: a replayed input yields the same id, and downstream drops the copy.
        id=stable_id("traj", problem.batch_id, problem.id, origin, model, parent_id, *prompt_ids),
        problem=problem,
        origin=origin,
        parent_id=parent_id,
        model=model,
        text=text,
        steps=split_steps(text),
        completion_tokens=completion_tokens,
    )
    trajectory.metadata["prompt"] = "+".join(prompt_ids)
    trajectory.metadata.update(style_measures(text, parent.text if parent is not None else None))
    trajectory.metadata.update(extra or {})
    return trajectory
