"""New trajectories derived by the Oracle: stable ids, origin, mode, parent, model, prompt versions, style."""

from __future__ import annotations

from learnerfit.domain.ids import stable_id
from learnerfit.domain.records import split_steps
from learnerfit.domain.style import style_measures
from learnerfit.v1 import records_pb2


def output_id(problem: records_pb2.Problem, origin: int, model: str, prompt_ids: list[str],
              parent: records_pb2.Trajectory | None = None) -> str:
    """Defined by what produces the output, known before the Oracle is asked: a replayed input yields the same id
    (downstream drops the copy; an Oracle service skips an output the topics already hold)."""
    return stable_id("traj", problem.batch_id, problem.id, origin, model, parent.id if parent is not None else "",
                     *prompt_ids)


def derived_trajectory(problem: records_pb2.Problem, origin: int, mode: int, model: str, text: str,
                       prompt_ids: list[str], parent: records_pb2.Trajectory | None = None, completion_tokens: int = 0,
                       notes: dict[str, str] | None = None,
                       usage: records_pb2.OracleUsage | None = None) -> records_pb2.Trajectory:
    return records_pb2.Trajectory(
        id=output_id(problem, origin, model, prompt_ids, parent),
        problem=problem, origin=origin, oracle_mode=mode, parent_id=parent.id if parent is not None else "",
        model=model, text=text, steps=split_steps(text), completion_tokens=completion_tokens, prompt_ids=prompt_ids,
        style=style_measures(text, parent.text if parent is not None else None), metadata=notes or {},
        oracle_usage=usage)
