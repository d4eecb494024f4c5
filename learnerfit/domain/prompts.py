"""The learner's prompt: one conversation format for sampling and for training on what was sampled.

SmolLM2-135M rarely follows a written instruction about answer format, but it
copies a worked example well (measured here: 0/64 samples in the asked format with
an instruction alone, most samples with two short demonstrations). Training
examples reuse the same turns, so the learner is fine-tuned in the very context it
samples in.
"""

from __future__ import annotations

from learnerfit.v1 import records_pb2

# Two solved problems shown before the real one: one step per line, then "Final answer: X".
DEMONSTRATIONS: tuple[tuple[str, str], ...] = (
    ("Calculate 3 + 4 * 2.", "4 * 2 = 8\n3 + 8 = 11\nFinal answer: 11"),
    ("Calculate 9 - 5 - -2.", "9 - 5 = 4\n4 - -2 = 4 + 2 = 6\nFinal answer: 6"),
)


def learner_conversation(problem: records_pb2.Problem) -> list[dict[str, str]]:
    """The chat turns the learner is sampled on; its chat template is applied by the back end."""
    turns: list[dict[str, str]] = []
    for question, solution in DEMONSTRATIONS:
        turns += [{"role": "user", "content": question}, {"role": "assistant", "content": solution}]
    turns.append({"role": "user", "content": problem.question})
    return turns


def training_messages(problem: records_pb2.Problem, solution: str) -> list[records_pb2.ChatMessage]:
    """The conversation a curated example trains on: the sampling prompt plus the chosen solution."""
    turns = [*learner_conversation(problem), {"role": "assistant", "content": solution}]
    return [records_pb2.ChatMessage(role=t["role"], content=t["content"]) for t in turns]
