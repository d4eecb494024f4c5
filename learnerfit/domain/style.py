"""Model-free style measures of a solution, and the learner's style card.

Cheap enough to record on every trace, so a user sees drift before any training:
how much LaTeX, how long the steps are, how much of the parent trace survived.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from learnerfit.domain.records import split_steps
from learnerfit.v1 import records_pb2

_LATEX = re.compile(r"\\[A-Za-z]+|\$+|\\\(|\\\)|\\\[|\\\]|[_^]\{")
_WORD = re.compile(r"\S+")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_HEADING = re.compile(r"^\s*(?:#+\s|\*\*[^*]+\*\*\s*$|Step \d+)", re.IGNORECASE)
_FINAL = re.compile(r"(Final answer:|\\boxed\{|####)", re.IGNORECASE)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def latex_density(text: str) -> float:
    """LaTeX commands and math delimiters per word."""
    return len(_LATEX.findall(text)) / max(len(words(text)), 1)


def mean_step_words(text: str) -> float:
    steps = split_steps(text)
    return sum(len(words(s)) for s in steps) / len(steps) if steps else 0.0


def overlap(text: str, parent: str) -> float:
    """Share of the parent's words kept, in order (longest matching blocks over the parent's length)."""
    parent_words = words(parent)
    if not parent_words:
        return 0.0
    matcher = SequenceMatcher(a=parent_words, b=words(text), autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / len(parent_words)


def style_measures(text: str, parent: str | None = None) -> records_pb2.StyleMeasures:
    """The measures every trace carries (`Trajectory.style`); the overlap only for a trace derived from a parent."""
    measures = records_pb2.StyleMeasures(latex_density=latex_density(text), mean_step_words=mean_step_words(text),
                                         steps=len(split_steps(text)))
    if parent is not None:
        measures.overlap_with_parent = overlap(text, parent)
    return measures


@dataclass(frozen=True)
class StyleCard:
    """What "the learner's style" is, measured on its own recent samples, for the Oracle's prompt."""

    samples: int
    mean_step_words: float
    steps_per_solution: float
    latex_density: float
    list_share: float
    heading_share: float
    openings: tuple[str, ...]
    final_answer: str

    @classmethod
    def from_samples(cls, texts: Sequence[str]) -> StyleCard:
        texts = [t for t in texts if t.strip()]
        n = max(len(texts), 1)
        lines = [line for t in texts for line in split_steps(t)]
        openings = Counter(" ".join(words(t)[:2]) for t in texts).most_common(3)
        finals = Counter(m.group(1) for t in texts for m in [_FINAL.search(t)] if m).most_common(1)
        return cls(
            samples=len(texts),
            mean_step_words=sum(mean_step_words(t) for t in texts) / n,
            steps_per_solution=len(lines) / n,
            latex_density=sum(latex_density(t) for t in texts) / n,
            list_share=sum(bool(_LIST_ITEM.match(x)) for x in lines) / max(len(lines), 1),
            heading_share=sum(bool(_HEADING.match(x)) for x in lines) / max(len(lines), 1),
            openings=tuple(o for o, _ in openings if o),
            final_answer=finals[0][0] if finals else "none",
        )

    def render(self) -> str:
        return "\n".join([
            f"- {self.steps_per_solution:.1f} lines per solution, {self.mean_step_words:.1f} words per line",
            f"- LaTeX: {'none' if self.latex_density < 0.01 else f'{self.latex_density:.2f} commands per word'}",
            f"- numbered or bulleted lists: {'no' if self.list_share < 0.1 else 'yes'};"
            f" headings: {'no' if self.heading_share < 0.1 else 'yes'}",
            f"- usual openings: {', '.join(repr(o) for o in self.openings) or 'none'}",
            f"- final answer written as: {self.final_answer!r}",
        ])
