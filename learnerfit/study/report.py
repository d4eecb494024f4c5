"""The study's report: one folder with a self-contained HTML page, a Markdown summary and the PNG plots.

Everything is computed from what the study recorded (the scored candidates, each policy's
training set, the base model's and each checkpoint's held-out Avg@k), so the report can be
written again without running anything.
"""

from __future__ import annotations

import base64
import html
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from learnerfit.domain.drift import set_rsr
from learnerfit.domain.records import mode_name, origin_name
from learnerfit.domain.stats import (
    PairedDifference,
    accuracy_interval,
    detectable_difference,
    holm,
    paired_cluster_bootstrap,
    spearman,
)
from learnerfit.v1 import records_pb2

MEASURES = (("mean reward", "reward"), ("mean learner ppl", "ppl"), ("RSR (Yang et al.)", "rsr"))
# The sign each measure's correlation with accuracy after training should have if it predicts the outcome: more
# reward is better data; lower learner perplexity (the drift hypothesis) and lower RSR (as published) are.
EXPECTED_SIGN = {"reward": +1, "ppl": -1, "rsr": -1}
PLOTS = (("reward_vs_ppl", "Reward against the learner's perplexity, every scored candidate"),
         ("accuracy", "Held-out accuracy after training, per arm (95% interval; dots: each seed), against the base "
                      "model"),
         ("segment_ppl", "The learner's perplexity by quarter of the solution, correct candidates"),
         ("top_loss_tokens", "The tokens that carry the most loss, correct candidates"),
         ("latex_density", "LaTeX commands and delimiters per word, correct candidates"))


def source(t: records_pb2.Trajectory) -> str:
    """Where a candidate came from, the style aligner's two modes apart (they cost the learner differently)."""
    name = origin_name(t.origin)
    return f"{name} ({mode_name(t.oracle_mode)})" if t.origin == records_pb2.ORIGIN_STYLE_ALIGNED else name


@dataclass
class PolicyResult:
    """One arm: its training set, and per training seed its checkpoint and held-out outcomes."""

    policy: str
    examples: Sequence[records_pb2.CuratedExample]
    checkpoints: list[str] = field(default_factory=list)  # one per seed trained
    # Per seed: held-out problem id -> whether each of its k samples was right.
    outcomes: list[dict[str, list[bool]]] = field(default_factory=list)
    measures: dict[str, float | None] = field(default_factory=dict)
    held_out: dict[str, float] = field(default_factory=dict)  # its evaluation, averaged over seeds: unparsed, ...

    @property
    def per_seed(self) -> list[float]:
        return [sum(map(sum, o.values())) / max(sum(map(len, o.values())), 1) for o in self.outcomes]

    @property
    def accuracy(self) -> float | None:
        return mean(self.per_seed) if self.outcomes else None


@dataclass
class Study:
    settings: dict[str, Any]
    candidates: Sequence[records_pb2.Trajectory]
    policies: list[PolicyResult]
    problems: int
    base_outcomes: dict[str, list[bool]] = field(default_factory=dict)  # the base model's held-out samples
    base_eval: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    held_out: dict[str, Any] = field(default_factory=dict)  # where the held-out set came from, overlap with training
    arms: dict[str, Any] = field(default_factory=dict)  # what selection recorded: matched problems, equal rewrites

    @property
    def base_accuracy(self) -> float | None:
        return PolicyResult("base", (), outcomes=[self.base_outcomes]).accuracy if self.base_outcomes else None

    def arm_outcomes(self) -> dict[str, list[dict[str, list[bool]]]]:
        """Every evaluated arm, the base model first."""
        arms = {"base": [self.base_outcomes]} if self.base_outcomes else {}
        return arms | {p.policy: p.outcomes for p in self.policies if p.outcomes}


def _mean(values) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return mean(values) if values else None


def _field(scores: records_pb2.Scores, name: str) -> float | None:
    return getattr(scores, name) if scores.HasField(name) else None


def fill_measures(result: PolicyResult) -> None:
    scores = [e.scores for e in result.examples]
    result.measures = {key: _mean(_field(s, key) for s in scores) for _, key in MEASURES if key != "rsr"}
    result.measures["rsr"] = set_rsr(scores)  # the set's RSR as published, not a mean of per-trace ratios
    checked = [s.step_accuracy for s in scores if s.HasField("step_accuracy")]
    result.measures["step_accuracy"] = _mean(checked)
    result.measures["false_step"] = float(sum(v < 1.0 for v in checked))
    result.measures["tokens"] = _mean(s.token_count for s in scores if s.token_count)  # as the learner tokenizes
    for quarter in range(4):
        result.measures[f"q{quarter + 1}"] = _mean(s.segment_ppl[quarter] for s in scores
                                                   if len(s.segment_ppl) > quarter)


def _expected(label: str) -> str:
    return "+" if EXPECTED_SIGN[dict(MEASURES)[label]] > 0 else "-"


def _agrees(label: str, rho: float) -> bool:
    """Whether a measure's observed correlation with accuracy has the sign it should have if it predicts it."""
    return (rho > 0) == (EXPECTED_SIGN[dict(MEASURES)[label]] > 0)


def correlations(study: Study) -> dict[str, float | None]:
    """Spearman's rho, over the trained policies, between each measure of a training set and the accuracy the
    learner reached on it (the compatibility measure that predicts the outcome ranks the policies alike)."""
    trained = [p for p in study.policies if p.accuracy is not None and all(p.measures.get(k) is not None
                                                                             for _, k in MEASURES)]
    return {label: spearman([p.measures[key] for p in trained], [p.accuracy for p in trained])
            for label, key in MEASURES}


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    result: PairedDifference
    adjusted_p: float  # Holm over every pair

    @property
    def resolved(self) -> bool:
        return self.adjusted_p < 0.05


def comparisons(study: Study) -> list[Comparison]:
    """Every pair of evaluated arms (each trained arm against the base model first, then each other): the paired
    difference, problems and seeds resampled, and Holm's adjustment over all the pairs."""
    arms = study.arm_outcomes()
    names = list(arms)
    pairs = [(b, a) for i, a in enumerate(names) for b in names[i + 1:]]
    if not pairs:
        return []
    tested = [paired_cluster_bootstrap(arms[a], arms[b]) for a, b in pairs]
    return [Comparison(a, b, result, adjusted)
            for (a, b), result, adjusted in zip(pairs, tested, holm([t.p for t in tested]), strict=True)]


def detectable(compared: Sequence[Comparison]) -> float | None:
    """The difference this study resolves at 80% power, from the spread its pairs showed (their median); None when
    they showed none (every sample alike), which says nothing about what it could resolve."""
    spreads = sorted(c.result.se for c in compared)
    if not spreads or spreads[len(spreads) // 2] == 0:
        return None
    return detectable_difference(spreads[len(spreads) // 2], len(compared))


def policy_rows(study: Study, compared: Sequence[Comparison]) -> list[dict[str, str]]:
    against_base = {c.a: c for c in compared if c.b == "base"}
    rows = []
    for p in study.policies:
        row = {"arm": p.policy, "examples": f"{len(p.examples)} of {study.problems}",
               "origins": ", ".join(f"{name} {count}" for name, count in sorted(_origin_counts(p.examples).items())),
               "mean length (learner tokens)": _fmt(p.measures.get("tokens"), 1),
               "mean reward": _fmt(p.measures.get("reward"), 3), "mean learner ppl": _fmt(p.measures.get("ppl")),
               "RSR (lower: better)": _fmt(p.measures.get("rsr")),
               "ppl by quarter": " / ".join(_fmt(p.measures.get(f"q{q}")) for q in range(1, 5)),
               "steps that hold (mean)": _fmt(p.measures.get("step_accuracy")),
               "examples with a false step": _fmt(p.measures.get("false_step"), 0) if p.examples else "-",
               "checkpoints": ", ".join(p.checkpoints) or "-", "held-out unparsed / truncated": _misses(p.held_out),
               "accuracy when parsed": _fmt(p.held_out.get("parsed_accuracy"), 3),
               "accuracy by first answer": _fmt(p.held_out.get("first_answer_accuracy"), 3)}
        if p.accuracy is None:
            row |= {"accuracy [95%]": "not trained" if not p.examples else "not evaluated", "per seed": "-",
                    "change from base": "-"}
        else:
            accuracy, low, high = accuracy_interval(p.outcomes)
            row["accuracy [95%]"] = f"{accuracy:.3f} [{low:.2f}, {high:.2f}]"
            row["per seed"] = " / ".join(f"{a:.3f}" for a in p.per_seed)
            row["change from base"] = _change(against_base.get(p.policy))
        rows.append(row)
    return rows


def _misses(evaluation: dict[str, float]) -> str:
    """How the held-out samples that were not right failed on format: no final answer, or cut at the token cap."""
    if "unparsed" not in evaluation:
        return "-"
    return f"{evaluation['unparsed']:.2f} / {evaluation.get('truncated', 0.0):.2f}"


def _origin_counts(examples: Sequence[records_pb2.CuratedExample]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for e in examples:
        counts[origin_name(e.origin)] += 1
    return counts


def _change(comparison: Comparison | None) -> str:
    if comparison is None:
        return "-"
    r = comparison.result
    verdict = ("above base" if r.difference > 0 else "below base") if comparison.resolved else "within noise"
    return f"{r.difference:+.3f} [{r.low:+.2f}, {r.high:+.2f}] {verdict}"


PAIRED_NOTE = ("Each pair is compared on the same held-out problems with the same sampling seeds. The interval "
               "resamples whole problems (a problem's k samples move together) and then each arm's training seeds (two "
               "checkpoints of one set differ), so it holds evaluation and training noise; with one seed per arm it "
               "holds evaluation noise only. Holm's adjustment keeps the chance of any false 'resolved' among all "
               "pairs under 5%. 'Detectable' is the true difference a pair of this spread resolves with 80% power at "
               "Holm's strictest step.")


def _budget(s: dict[str, Any]) -> str:
    if s.get("budget_epochs"):
        return f"{s['budget_epochs']:g} passes over each set"
    return f"{s['budget_steps']} optimizer steps"


def summary_paragraph(study: Study, compared: Sequence[Comparison]) -> str:
    """What was compared, what came out in numbers, and whether the differences exceed the noise."""
    s = study.settings
    trained = [p for p in study.policies if p.accuracy is not None]
    seeds = s.get("seeds", 1)
    oracle_work = sorted({source(t) for t in study.candidates if t.origin != records_pb2.ORIGIN_LEARNER_SAMPLE})
    oracle = (f" and the Oracle ({s['oracle']}) added {', '.join(oracle_work)} solutions" if oracle_work else "")
    text = (f"This study asked which training data helps the learner {s['learner']}. On the same "
            f"{study.problems} problems ({s['problems']}), the learner sampled {s['k']} solutions each{oracle}; "
            f"each arm's training set was chosen from those candidates by a curation policy or written by the study "
            f"itself, and the learner was fine-tuned "
            f"from the same base on each set with the same budget ({_budget(s)}), "
            f"{f'{seeds} training seeds per arm' if seeds > 1 else 'one training seed per arm'}, then scored on "
            f"{study.held_out.get('problems', s['eval_problems'])} held-out problems x {s['eval_k']} samples "
            f"(at most {s.get('eval_max_new_tokens', 64)} tokens each).")
    if study.arms.get("matched_problems") is not None:
        text += (f" Matched: every arm trained on the same {study.arms['matched_problems']} problems (those all its "
                 "sets cover), one trace each.")
    if study.held_out:
        h = study.held_out
        text += (f" The held-out problems come from {h['source']}; {h['shared_with_training']} of them share a "
                 f"question with a training problem ({h['left_out_for_overlap']} "
                 f"{'candidate that did was' if h['left_out_for_overlap'] == 1 else 'candidates that did were'} left "
                 "out).")
    by_source = _by_source(study.candidates, correct_only=True)
    ppl = {name: _mean(_field(t.scores, "ppl") for t in ts) for name, ts in by_source.items()}
    if len(ppl) > 1:
        cheapest, dearest = min(ppl, key=lambda n: ppl[n] or math.inf), max(ppl, key=lambda n: ppl[n] or -1)
        text += (f" All kept solutions are verified correct, yet what the learner must absorb differs by origin: its "
                 f"perplexity is {_fmt(ppl[cheapest])} on {cheapest} and {_fmt(ppl[dearest])} on {dearest}.")
    if study.arms.get("rewrites"):
        equal, total = study.arms["rewrites_equal_to_parent"], study.arms["rewrites"]
        text += (f" Of {total} style-aligned rewrites, {equal} equal the learner sample they rewrote (deduplicated "
                 "away: a rewrite of a correct sample adds nothing).")
    flawed = {p.policy: int(p.measures["false_step"]) for p in study.policies if p.measures.get("false_step")}
    if flawed:
        text += (" Verified answers are not verified steps: the reward scorer's exact check of every arithmetic "
                 "step found a false one in " + ", ".join(f"{n} of {p}'s examples" for p, n in flawed.items())
                 + " (curation.min_step_accuracy keeps them out).")
    elif any(p.measures.get("step_accuracy") is not None for p in study.policies):
        text += " Every checked step of every kept example holds (the reward scorer's exact step check)."
    base = study.base_accuracy
    if base is not None:
        text += f" The base model answered {base:.3f} of held-out samples"
        if "unparsed" in study.base_eval:
            text += (f"; {study.base_eval['unparsed']:.2f} of them gave no final answer and "
                     f"{study.base_eval.get('truncated', 0.0):.2f} were cut at the token cap, so its accuracy among "
                     f"answered samples was {study.base_eval.get('parsed_accuracy', 0.0):.3f}")
        text += "."
    if trained:
        text += " After training: " + "; ".join(f"{p.policy} {p.accuracy:.3f}" for p in trained) + "."
        text += _against_base(trained, compared)
        text += _format_share(trained, base)
        text += _register_dose(trained)
        between = [c for c in compared if "base" not in (c.a, c.b)]
        resolved = [f"{c.a} - {c.b} {c.result.difference:+.3f}" for c in between if c.resolved]
        if between:
            text += (f" Between arms (problems and seeds resampled, Holm's correction over all {len(compared)} "
                     f"pairs), {len(resolved)} of {len(between)} "
                     f"{'difference is' if len(resolved) == 1 else 'differences are'} resolved"
                     + (f": {', '.join(resolved)}." if resolved else "."))
        smallest = detectable(compared)
        if smallest is not None:
            text += (f" At this size a pair is resolved with 80% power when its true difference is about "
                     f"{smallest:.2f} or more (from the spread the pairs showed).")
        elif compared:
            text += " The pairs showed no spread (every sample alike), so what this size can resolve is unknown."
        rhos = {label: rho for label, rho in correlations(study).items() if rho is not None}
        if rhos:
            text += (" Over the arms, the training sets' " + ", ".join(
                f"{label} ranks accuracy with Spearman rho {rho:+.2f} (expected {_expected(label)}"
                f"{'' if _agrees(label, rho) else ', the opposite'})"
                for label, rho in rhos.items()) + f" ({len(trained)} points: suggestive at most).")
    return text


def _against_base(trained: Sequence[PolicyResult], compared: Sequence[Comparison]) -> str:
    if not any(c.b == "base" for c in compared):
        return ""
    moved = {c.a for c in compared if c.b == "base" and c.resolved}
    separable = [p.policy for p in trained if p.policy in moved]
    if len(separable) == len(trained):
        return " Every trained arm moved the learner away from the base model (resolved after Holm's correction)."
    if separable:
        return (f" {', '.join(separable)} moved the learner away from the base model (resolved after Holm's "
                "correction); the others did not.")
    return " No arm differs from the base model beyond the noise at this size."


def _format_share(trained: Sequence[PolicyResult], base: float | None) -> str:
    """How much of each arm's gain the format-only control (the answer line alone) accounts for."""
    control = next((p for p in trained if p.policy == "format_only"), None)
    if control is None or base is None:
        return ""
    if control.accuracy <= base:
        return (f" The format-only control (the answer line alone) reached {control.accuracy:.3f}, not above the base "
                f"model's {base:.3f}: format alone accounts for none of any arm's gain.")
    shares = [f"{p.policy} {min(1.0, (control.accuracy - base) / (p.accuracy - base)):.0%}"
              for p in trained if p is not control and p.accuracy > base]
    return (f" The format-only control (the answer line alone) reached {control.accuracy:.3f}"
            + (f"; of each arm's gain over the base model, format alone accounts for: {', '.join(shares)}."
               if shares else "."))


def _register_dose(trained: Sequence[PolicyResult]) -> str:
    """The teacher's registers, correctness fixed: drift against accuracy."""
    registers = [p for p in trained if p.policy.startswith("teacher_")]
    if len(registers) < 2:
        return ""
    return (" The teacher's own correct solutions in each register, a dose of drift with correctness fixed: "
            + "; ".join(f"{p.policy.removeprefix('teacher_')} (learner ppl {_fmt(p.measures.get('ppl'))}) "
                        f"{p.accuracy:.3f}" for p in registers) + ".")


def _by_source(candidates: Sequence[records_pb2.Trajectory], correct_only: bool
               ) -> dict[str, list[records_pb2.Trajectory]]:
    grouped: dict[str, list[records_pb2.Trajectory]] = defaultdict(list)
    for t in candidates:
        if not correct_only or t.scores.verdict == records_pb2.VERDICT_CORRECT:
            grouped[source(t)].append(t)
    return dict(sorted(grouped.items()))


def top_loss_tokens(candidates: Sequence[records_pb2.Trajectory], top: int = 8) -> dict[str, list[tuple[str, float]]]:
    """Per origin, the tokens with the largest summed loss over its correct candidates."""
    result = {}
    for name, ts in _by_source(candidates, correct_only=True).items():
        totals: dict[str, float] = defaultdict(float)
        for t in ts:
            for token in t.scores.top_loss_tokens:
                totals[token.token] += token.total_loss
        result[name] = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    return result


# -- plots ---------------------------------------------------------------------------------------------------------

def write_plots(study: Study, folder: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here, nor on a cluster
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    colours = {name: plt.get_cmap("tab10")(i) for i, name in
               enumerate(sorted({source(t) for t in study.candidates}))}
    paths = {}

    def save(fig, name: str) -> None:
        fig.tight_layout()
        paths[name] = folder / f"{name}.png"
        fig.savefig(paths[name], dpi=110)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, ts in _by_source(study.candidates, correct_only=False).items():
        both = [t for t in ts if t.scores.HasField("ppl") and t.scores.HasField("reward")]
        points = [(t.scores.ppl, t.scores.reward) for t in both]
        correct = [t.scores.verdict == records_pb2.VERDICT_CORRECT for t in both]
        if points:
            ax.scatter([p for p, _ in points], [r for _, r in points], s=[28 if c else 10 for c in correct],
                       color=colours[name], alpha=0.7, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("learner perplexity (log scale; lower: closer to how the learner writes)")
    ax.set_ylabel("reward model score")
    ax.set_title("Quality against compatibility (large dots: verified correct)")
    _legend(ax)
    save(fig, "reward_vs_ppl")

    fig, ax = plt.subplots(figsize=(7, 4))
    names = [p.policy for p in study.policies]
    for i, p in enumerate(study.policies):
        if p.accuracy is None:
            continue
        accuracy, low, high = accuracy_interval(p.outcomes)
        ax.errorbar([i], [accuracy], yerr=[[accuracy - low], [high - accuracy]], fmt="o", capsize=5)
        ax.scatter([i] * len(p.per_seed), p.per_seed, s=10, color="black", alpha=0.5)  # each seed's checkpoint
    if study.base_outcomes:
        base, low, high = accuracy_interval([study.base_outcomes])
        ax.axhline(base, color="grey", linestyle="--", label=f"base model {base:.3f}")
        ax.axhspan(low, high, color="grey", alpha=0.15)
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_ylabel(f"held-out avg@{study.settings['eval_k']}")
    ax.set_title("Accuracy after training on each arm's set (95% interval; dots: each seed)")
    save(fig, "accuracy")

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, ts in _by_source(study.candidates, correct_only=True).items():
        quarters = [_mean(t.scores.segment_ppl[q] for t in ts if len(t.scores.segment_ppl) > q) for q in range(4)]
        if any(v is not None for v in quarters):
            ax.plot(range(1, 5), [math.nan if v is None else v for v in quarters], marker="o", color=colours[name],
                    label=name)
    ax.set_xticks(range(1, 5), ["first", "second", "third", "last"])
    ax.set_xlabel("quarter of the solution")
    ax.set_ylabel("learner perplexity")
    _legend(ax)
    save(fig, "segment_ppl")

    tokens = top_loss_tokens(study.candidates)
    fig, axes = plt.subplots(1, max(len(tokens), 1), figsize=(3.2 * max(len(tokens), 1), 3.6), squeeze=False)
    for ax, (name, pairs) in zip(axes[0], tokens.items(), strict=False):
        ax.barh([repr(t)[1:-1] or "(empty)" for t, _ in reversed(pairs)], [v for _, v in reversed(pairs)],
                color=colours[name])
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("summed loss (nats)", fontsize=8)
        ax.tick_params(labelsize=7)
    save(fig, "top_loss_tokens")

    fig, ax = plt.subplots(figsize=(7, 3.5))
    density = {name: _mean(t.style.latex_density for t in ts)
               for name, ts in _by_source(study.candidates, correct_only=True).items()}
    ax.bar(range(len(density)), [v or 0.0 for v in density.values()], color=[colours[n] for n in density])
    ax.set_xticks(range(len(density)), list(density), rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("LaTeX per word")
    save(fig, "latex_density")
    return paths


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:  # a study with no scored candidates draws none
        ax.legend(fontsize=8)


# -- documents -----------------------------------------------------------------------------------------------------

def _table(rows: Sequence[dict[str, str]]) -> tuple[list[str], list[list[str]]]:
    header = list(rows[0]) if rows else []
    return header, [[row[h] for h in header] for row in rows]


def _markdown_table(rows: Sequence[dict[str, str]]) -> str:
    header, body = _table(rows)
    if not header:
        return "(none)\n"
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines) + "\n"


def _html_table(rows: Sequence[dict[str, str]], table_id: str) -> str:
    header, body = _table(rows)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>'


def correlation_rows(study: Study) -> list[dict[str, str]]:
    trained = sum(p.accuracy is not None for p in study.policies)
    return [{"measure of the training set": label, "Spearman rho with accuracy after training": _fmt(rho),
             "expected sign": _expected(label),
             "observed sign agrees": "-" if rho is None or rho == 0 else "yes" if _agrees(label, rho) else "no",
             "arms": str(trained)} for label, rho in correlations(study).items()]


def paired_rows(compared: Sequence[Comparison]) -> list[dict[str, str]]:
    """Every pair of arms: the accuracy difference with its paired interval (problems and seeds resampled), its
    p-value and Holm's adjustment over all the pairs (resolved when below 0.05), and the difference a pair of this
    spread resolves with 80% power."""
    return [{"pair": f"{c.a} - {c.b}", "difference": f"{c.result.difference:+.3f}",
             "95% interval (problems, seeds resampled)": f"[{c.result.low:+.3f}, {c.result.high:+.3f}]",
             "p": f"{c.result.p:.4f}", "p, Holm over pairs": f"{c.adjusted_p:.4f}",
             "resolved": "yes" if c.resolved else "no",
             "detectable (80% power)": f"{detectable_difference(c.result.se, len(compared)):.3f}" if c.result.se
             else "- (no spread)"}
            for c in compared]


def spend_rows(study: Study) -> list[dict[str, str]]:
    """What the Oracle's accepted outputs took, by source (tokens; cost where the model has a price), and for each
    arm what the Oracle-written examples of its training set cost: the price of that arm's data."""
    usage = {t.id: (source(t), t.oracle_usage) for t in study.candidates
             if t.origin != records_pb2.ORIGIN_LEARNER_SAMPLE}

    def row(name: str, ids: Sequence[str]) -> dict[str, str] | None:
        used = [usage[i][1] for i in ids if i in usage]
        if not used:
            return None
        priced = [u.cost_usd for u in used if u.HasField("cost_usd")]
        return {"what": name, "Oracle outputs": str(len(used)),
                "prompt tokens": str(sum(u.prompt_tokens for u in used)),
                "completion tokens": str(sum(u.completion_tokens for u in used)),
                "cost (USD)": f"{sum(priced):.6f}" if priced else "no price set",
                "tokens counted here": str(sum(u.source in (records_pb2.USAGE_SOURCE_COUNTED,
                                                            records_pb2.USAGE_SOURCE_ESTIMATED) for u in used))}

    by_source: dict[str, list[str]] = {}
    for trajectory_id, (name, _) in usage.items():
        by_source.setdefault(name, []).append(trajectory_id)
    rows = [row(f"accepted {name} outputs", ids) for name, ids in sorted(by_source.items())]
    rows += [row(f"arm {p.policy}: its training set", [e.trajectory_id for e in p.examples]) for p in study.policies]
    return [r for r in rows if r is not None]


SPEND_NOTE = ("Accepted Oracle outputs only: what the rejected ones cost is in each batch's GetBatch (oracle_spend). "
              "The rule-based teacher asks no model and costs nothing.")


def settings_rows(study: Study) -> list[dict[str, str]]:
    rows = [{"setting": k, "value": str(v)} for k, v in sorted(study.settings.items())]
    rows += [{"setting": f"time: {k}", "value": f"{v:.0f} s"} for k, v in study.timings.items()]
    return rows


def checkpoint_rows(study: Study) -> list[dict[str, str]]:
    return [{k: str(v) for k, v in c.items()} for c in study.checkpoints]


CAVEAT = ("Spearman's rho over a handful of arms is a weak signal: with 5 arms only |rho| = 1 reaches p < 0.05.")


def write_report(study: Study, folder: Path) -> dict[str, Path]:
    """Writes report.html (self-contained: plots inlined, no network), summary.md and plots/*.png."""
    for p in study.policies:
        fill_measures(p)
    plots = write_plots(study, folder / "plots")
    compared = comparisons(study)  # the bootstrap runs once, for the paragraph and the tables
    paired = paired_rows(compared)
    paragraph = summary_paragraph(study, compared)
    policy_table = policy_rows(study, compared)
    tokens = top_loss_tokens(study.candidates)

    md = [f"# LearnerFit study: which data helps {study.settings['learner']}\n\n", paragraph + "\n\n",
          "## Arms\n", _markdown_table(policy_table),
          "\n## Which differences are resolved\n", _markdown_table(paired) if paired else "No two arms evaluated.\n",
          f"\n{PAIRED_NOTE}\n",
          "\n## Which measure predicts the outcome\n", _markdown_table(correlation_rows(study)), f"\n{CAVEAT}\n",
          "\n## Plots\n"]
    md += [f"![{title}](plots/{name}.png)\n" for name, title in PLOTS]
    md += ["\n## Tokens carrying the most loss\n"]
    md += [f"* {name}: " + ", ".join(f"`{t!r}` {v:.1f}" for t, v in pairs) + "\n" for name, pairs in tokens.items()]
    spend = spend_rows(study)
    if spend:
        md += ["\n## What the Oracle's data cost\n", _markdown_table(spend), f"\n{SPEND_NOTE}\n"]
    md += ["\n## Checkpoints\n", _markdown_table(checkpoint_rows(study)),
           "\n## Settings (to repeat the study)\n", _markdown_table(settings_rows(study))]
    (folder / "summary.md").write_text("".join(md), encoding="utf-8")

    figures = "".join(
        f'<figure id="plot-{name}"><img alt="{html.escape(title)}" src="data:image/png;base64,'
        f'{base64.b64encode(plots[name].read_bytes()).decode()}"><figcaption>{html.escape(title)}</figcaption></figure>'
        for name, title in PLOTS)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LearnerFit study</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }}
th {{ background: #f3f3f3; }}
figure {{ margin: 1.5em 0; }} img {{ max-width: 100%; }} .caveat {{ color: #555; font-size: 0.9em; }}
</style></head>
<body>
<h1>Which data helps {html.escape(study.settings['learner'])}</h1>
<p id="summary">{html.escape(paragraph)}</p>
<h2>Arms</h2>
{_html_table(policy_table, "policies")}
<h2>Which differences are resolved</h2>
{_html_table(paired, "pairs") if paired else "<p>No two arms evaluated.</p>"}
<p class="caveat">{html.escape(PAIRED_NOTE)}</p>
<h2>Which measure predicts the outcome</h2>
{_html_table(correlation_rows(study), "correlations")}
<p class="caveat">{html.escape(CAVEAT)}</p>
<h2>Plots</h2>
{figures}
{f'<h2>What the Oracle&#39;s data cost</h2>{_html_table(spend, "spend")}<p class="caveat">'
 f'{html.escape(SPEND_NOTE)}</p>' if spend else ""}
<h2>Checkpoints</h2>
{_html_table(checkpoint_rows(study), "checkpoints")}
<h2>Settings</h2>
{_html_table(settings_rows(study), "settings")}
<script>
// Marks the page with how many plots decoded (at load, when every inlined image is in), so a headless browser can
// tell a broken image from a drawn one.
window.addEventListener("load", () => {{
  document.body.dataset.plotsDrawn = [...document.images].filter(i => i.complete && i.naturalWidth > 0).length;
}});
</script>
</body></html>
"""
    (folder / "report.html").write_text(page, encoding="utf-8")
    return {"html": folder / "report.html", "markdown": folder / "summary.md", **plots}
