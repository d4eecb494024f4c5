"""Where problems come from on the client side: reasoning-gym families (offline) or a JSONL file."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from learnerfit.domain.ids import stable_id
from learnerfit.v1 import records_pb2

# The `make run` default: two one-digit terms, + and -. SmolLM2-135M solves some of
# these on CPU, so rejection sampling has correct samples to keep.
EASY_ARITHMETIC: dict[str, Any] = {
    "min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1,
    "operators": ["+", "-"], "allow_parentheses": False, "allow_negation": False,
}


class ProblemSourceError(ValueError):
    pass


def normalized_question(question: str) -> str:
    """A question as compared for overlap: case, spacing and closing punctuation set aside ("Calculate 1 - 6." and
    "calculate 1 -  6" are one question)."""
    return " ".join(question.lower().split()).rstrip(" .?!")


def held_out(candidates: Sequence[records_pb2.Problem], training: Sequence[records_pb2.Problem],
             count: int) -> tuple[list[records_pb2.Problem], int]:
    """The first `count` distinct candidates whose question no training problem shares, each with a stable id, and
    how many candidates were left out because a training problem shares their question."""
    trained_on = {normalized_question(p.question) for p in training}
    taken: set[str] = set()
    chosen: list[records_pb2.Problem] = []
    overlapping = 0
    for problem in candidates:
        key = normalized_question(problem.question)
        if key in trained_on:
            overlapping += 1
            continue
        if key in taken:  # a small family repeats itself: each question once
            continue
        taken.add(key)
        chosen.append(records_pb2.Problem(id=stable_id("held-out", key, problem.reference_answer),
                                          question=problem.question, reference_answer=problem.reference_answer,
                                          source=problem.source))
        if len(chosen) == count:
            break
    return chosen, overlapping


def from_reasoning_gym(family: str, count: int, seed: int = 0,
                       options: Mapping[str, Any] | None = None) -> list[records_pb2.Problem]:
    import reasoning_gym

    try:
        dataset = reasoning_gym.create_dataset(family, size=count, seed=seed, **dict(options or {}))
    except Exception as exc:  # unknown family or option: say which
        raise ProblemSourceError(f"reasoning-gym family {family!r} with options {dict(options or {})}: {exc}") from exc
    return [
        records_pb2.Problem(question=entry["question"], reference_answer=str(entry["answer"]),
                            source=f"reasoning_gym/{family}#{seed}:{i}",
                            reference_solution=str((entry.get("metadata") or {}).get("answer_cot") or ""))
        for i, entry in enumerate(dataset)
    ]


def from_jsonl(path: Path) -> list[records_pb2.Problem]:
    """One JSON object per line with "question" and "answer" (or "reference_answer"), optionally "source" and
    "solution" (a worked solution, which the rule-based teacher can follow)."""
    problems = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ProblemSourceError(f"{path}:{number}: not JSON: {exc.msg}") from exc
            answer = row.get("answer", row.get("reference_answer"))
            if not isinstance(row, dict) or "question" not in row or answer is None:
                raise ProblemSourceError(f"{path}:{number}: needs \"question\" and \"answer\"")
            problems.append(records_pb2.Problem(question=str(row["question"]), reference_answer=str(answer),
                                                source=str(row.get("source", f"{path.name}:{number}")),
                                                reference_solution=str(row.get("solution") or "")))
    if not problems:
        raise ProblemSourceError(f"{path}: no problems")
    return problems


def family_options(family: str, pairs: list[str] | None = None) -> dict[str, Any]:
    """A family's reasoning-gym options: the KEY=VALUE pairs given, else the easy defaults for basic_arithmetic (the
    local learner solves little else), else the family's own."""
    if pairs:
        return parse_options(pairs)
    return dict(EASY_ARITHMETIC) if family == "basic_arithmetic" else {}


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs, VALUE read as JSON when it parses (numbers, lists), else as a string."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ProblemSourceError(f"--family-option {pair!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options
