"""Which training recipe keeps the learner improving over continuous training's small increments (issue 27).

`python -m bench.increments` trains SmolLM2-135M-Instruct through INCREMENTS increments of STEP curated examples
each, every increment starting from the previous one's checkpoint (as `learnerfit stream` does, one checkpoint per
--train-every examples), once per recipe, and evaluates every checkpoint on the same held-out problems and sampling
seeds. It prints each recipe's accuracy after every increment, the paired difference (95%) against the base model
and against the new-examples-only recipe at the end, and what the promotion gate said at each step: as in the stream,
an increment trains from the followed learner, and a checkpoint the gate does not promote is not followed ("learner":
the followed learner's accuracy after the last increment).

The examples are the rule-based teacher's correct solutions in the learner's own layout (`teacher_bare`, the study's
arm that raised held-out accuracy from 0.068 to 0.236): a stream's curated examples without the hour of sampling
that producing them through the pipeline costs here. Not part of `make bench` (about 50 minutes on 2 cores).

Shrink for a smoke run: BENCH_INCREMENTS, BENCH_STEP, BENCH_EVAL_PROBLEMS, BENCH_EVAL_K, BENCH_RECIPES (names).
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from learnerfit.domain.curation.curator import example_of
from learnerfit.domain.problems import family_options, from_reasoning_gym
from learnerfit.domain.promotion import PromotionSettings, gate_decision, state_words
from learnerfit.domain.stats import paired_cluster_bootstrap
from learnerfit.models.settings import SMOLLM2, EngineOptions
from learnerfit.study.arms import built_trajectories
from learnerfit.v1 import records_pb2
from trainer.config import PRESETS, TrainSettings
from trainer.evaluate import HeldOutEvaluator, outcomes
from trainer.sft import train

INCREMENTS = int(os.environ.get("BENCH_INCREMENTS", "3"))
STEP = int(os.environ.get("BENCH_STEP", "32"))  # learnerfit stream's --train-every default
EVAL_PROBLEMS = int(os.environ.get("BENCH_EVAL_PROBLEMS", "64"))
EVAL_K = int(os.environ.get("BENCH_EVAL_K", "2"))
FAMILY = "basic_arithmetic"


@dataclass
class Recipe:
    name: str
    about: str
    learning_rate: float
    replay: int  # earlier examples mixed into each increment (drawn as the trainer draws them)
    epochs: float = PRESETS["cpu"]["epochs"]


RECIPES = [
    Recipe("new_only", "the new examples alone, the cpu preset (the stream's default before this)",
           PRESETS["cpu"]["learning_rate"], 0),
    Recipe("replay", "the new examples and as many earlier ones, cpu preset", PRESETS["cpu"]["learning_rate"], STEP),
    Recipe("replay_low_lr", "the new examples and as many earlier ones, lr 3e-4", 3e-4, STEP),
]


@dataclass
class Trained:
    recipe: Recipe
    accuracy: list[float] = field(default_factory=list)
    outcomes: list[dict] = field(default_factory=list)
    gate: list[str] = field(default_factory=list)
    learner: dict = field(default_factory=dict)  # the followed learner's outcomes after the last increment
    seconds: float = 0.0


def increments() -> list[list[records_pb2.CuratedExample]]:
    """INCREMENTS slices of STEP teacher_bare examples on training problems (seed 0: where batches draw)."""
    problems = from_reasoning_gym(FAMILY, INCREMENTS * STEP * 2, seed=0, options=family_options(FAMILY))
    written, _ = built_trajectories("teacher_bare", problems)
    examples = [example_of(t, "teacher_bare", "bench.increments") for t in written][: INCREMENTS * STEP]
    if len(examples) < INCREMENTS * STEP:
        raise SystemExit(f"the teacher wrote {len(examples)} examples; {INCREMENTS * STEP} needed")
    return [examples[i * STEP:(i + 1) * STEP] for i in range(INCREMENTS)]


def replayed(recipe: Recipe, earlier: list[records_pb2.CuratedExample]) -> list[records_pb2.CuratedExample]:
    if not recipe.replay or not earlier:
        return []
    pool = sorted(earlier, key=lambda e: e.id)
    return random.Random(len(pool)).sample(pool, min(recipe.replay, len(pool)))


def run_recipe(recipe: Recipe, slices, evaluator: HeldOutEvaluator, base: dict, scratch: Path) -> Trained:
    result, start, earlier, previous = Trained(recipe), SMOLLM2, [], base
    gate = PromotionSettings()
    started = time.perf_counter()
    for number, new in enumerate(slices, 1):
        settings = TrainSettings(learning_rate=recipe.learning_rate, epochs=recipe.epochs)
        out = scratch / f"{recipe.name}-{number}"
        train([*new, *replayed(recipe, earlier)], start, out, settings)
        judged = outcomes(evaluator.judge(out))
        decision = gate_decision(judged, previous, "the previous learner", gate)
        result.outcomes.append(judged)
        result.accuracy.append(decision.accuracy)
        result.gate.append(state_words(decision.state))
        print(f"  {recipe.name} increment {number}: held-out {decision.accuracy:.3f} "
              f"({state_words(decision.state)} against {decision.compared_accuracy:.3f})", flush=True)
        # The stream follows a checkpoint only once the gate promoted it: the next increment trains from the learner,
        # and replays what the learner was trained on.
        if decision.state == records_pb2.PROMOTION_STATE_PROMOTED:
            start, previous, earlier = str(out), judged, earlier + new
    result.learner, result.seconds = previous, time.perf_counter() - started
    return result


def main() -> int:
    chosen = os.environ.get("BENCH_RECIPES", "").split(",") if os.environ.get("BENCH_RECIPES") else None
    recipes = [r for r in RECIPES if chosen is None or r.name in chosen]
    evaluator = HeldOutEvaluator(TrainSettings(eval_problems=EVAL_PROBLEMS, eval_k=EVAL_K,
                                               evaluator=EngineOptions(torch_threads=os.cpu_count() or 1)))
    slices = increments()
    print(f"{INCREMENTS} increments of {STEP} teacher_bare examples; held-out {EVAL_PROBLEMS} {FAMILY} problems x "
          f"{EVAL_K} samples", flush=True)
    base = outcomes(evaluator.judge(SMOLLM2))
    base_accuracy = _accuracy(base)
    print(f"  base model: held-out {base_accuracy:.3f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="learnerfit-bench-increments-") as scratch:
        results = [run_recipe(r, slices, evaluator, base, Path(scratch)) for r in recipes]
    print()
    header = f"{'recipe':<15}" + "".join(f"{f'after {i + 1}':>10}" for i in range(INCREMENTS)) + \
        f"{'learner':>9}  {'vs base (95%)':<24}{'vs new_only (95%)':<24}{'gate':<40}minutes"
    print(header + "\n" + "-" * len(header))
    reference = next((r for r in results if r.recipe.name == "new_only"), None)
    for r in results:
        row = f"{r.recipe.name:<15}" + "".join(f"{a:>10.3f}" for a in r.accuracy)
        row += f"{_accuracy(r.learner):>9.3f}  {_difference(r.learner, base):<24}"
        row += f"{_difference(r.learner, reference.learner) if reference and r is not reference else '':<24}"
        print(row + f"{', '.join(r.gate):<40}{r.seconds / 60:.0f}")
    print(f"\nbase model {base_accuracy:.3f}; " + "; ".join(f"{r.recipe.name}: {r.recipe.about}" for r in results))
    return 0


def _accuracy(judged: dict) -> float:
    return sum(map(sum, judged.values())) / sum(map(len, judged.values()))


def _difference(a: dict, b: dict) -> str:
    paired = paired_cluster_bootstrap([a], [b])
    return f"{paired.difference:+.3f} [{paired.low:+.3f}, {paired.high:+.3f}]"


if __name__ == "__main__":
    raise SystemExit(main())
