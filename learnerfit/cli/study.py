"""`learnerfit study`: the paper's experiment as one command, on the user's learner.

Four phases, each recorded in the output folder when it finishes (study.json), so an
interrupted study resumes at the phase it was in:

1. curate: one batch through the whole pipeline (learner samples and every Oracle mode
   the arms need), its scored candidates read off the `scored` topic;
2. select: one training set per arm over the *same* candidates (a curation policy's through
   the curator service's Curate call; a set the study writes itself scored by the reward and
   drift scorers), saved as Hugging Face datasets with cards;
3. train: the base model's held-out Avg@k, then one checkpoint per arm and training seed
   from the same base with the same budget (the trainer service's Train call, registered
   with its arm, seed and budget);
4. report: HTML, Markdown and PNG plots (learnerfit/study/report.py).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Sequence
from statistics import mean
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToJson, Parse
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from learnerfit.cli.addresses import CALLABLE, StackAddresses, add_address_options, given_addresses
from learnerfit.cli.batches import wait_for_batch
from learnerfit.cli.output import errors, say
from learnerfit.cli.stack import add_stack_options, add_training_options, prepare_models, stack_config
from learnerfit.domain import topics
from learnerfit.domain.intake import IntakeLimits, validate_sampling
from learnerfit.domain.oracle.prompts import all_templates
from learnerfit.domain.oracle.selection import MODES_BY_NAME
from learnerfit.domain.problems import family_options, from_jsonl, from_reasoning_gym, held_out, normalized_question
from learnerfit.errors import InvalidInput
from learnerfit.local.stack import LocalStack
from learnerfit.registry.client import RegistryClient
from learnerfit.runtime.follow import TopicFollower
from learnerfit.study.arms import HELP as ARMS_HELP
from learnerfit.study.arms import (
    built_set,
    built_trajectories,
    candidates_for,
    check_arm,
    curated_by,
    matched,
    rewrites_equal_to_parent,
)
from learnerfit.study.datasets import save_training_set
from learnerfit.study.report import PolicyResult, Study, write_report
from learnerfit.study.state import StudyState
from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from trainer.config import PRESETS, TrainSettings
from trainer.evaluate import HELD_OUT_SEED, outcomes

DEFAULT_ARMS = ("rejection_sampling", "oracle_refined", "oracle_synthesized", "style_aligned", "utility")
# The Oracle work each curation policy chooses from (the learner's own samples are always there); built sets need none.
MODES_FOR = {"rejection_sampling": (), "oracle_refined": ("refine",), "oracle_synthesized": ("synthesize",),
             "style_aligned": ("rewrite", "repair"), "utility": ("refine", "synthesize", "rewrite", "repair")}


def arm_list(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one arm")
    for name in names:
        try:
            check_arm(name)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return list(dict.fromkeys(names))


def oracle_modes(arms: Sequence[str]) -> list[int]:
    return sorted({MODES_BY_NAME[m] for arm in arms if curated_by(arm)
                   for m in MODES_FOR.get(curated_by(arm), tuple(MODES_BY_NAME))})


def study_problems(args: argparse.Namespace) -> list[records_pb2.Problem]:
    """--problems is a JSONL file (its first --n problems) or a reasoning-gym family (--n drawn from --problem-seed)."""
    path = Path(args.problems)
    if path.suffix == ".jsonl" or path.exists():
        problems = from_jsonl(path)[: args.n]
        if len(problems) < args.n:
            say(f"{path} holds {len(problems)} problems; the study uses them all (--n {args.n})")
        return problems
    return from_reasoning_gym(args.problems, args.n, seed=args.problem_seed,
                              options=family_options(args.problems, args.family_option))


def held_out_problems(args: argparse.Namespace,
                      training: list[records_pb2.Problem]) -> tuple[list[records_pb2.Problem], dict[str, Any]]:
    """The held-out set, from the study's own source and options (a JSONL study: the rows after its first --n), with
    no question a training problem shares; and where it came from, for the report."""
    path = Path(args.problems)
    if path.suffix == ".jsonl" or path.exists():
        pool, source = from_jsonl(path)[args.n:], f"{path.name}, the rows after the first {args.n}"
    else:
        family = args.eval_family
        options = family_options(family, args.family_option if family == args.problems else None)
        # Drawn generously: a small family repeats itself, and what the study trains on is set apart.
        pool = from_reasoning_gym(family, 4 * args.eval_problems + 64, seed=HELD_OUT_SEED, options=options)
        source = f"{family} {json.dumps(options, sort_keys=True)}, seed {HELD_OUT_SEED}"
    problems, overlapping = held_out(pool, training, args.eval_problems)
    if not problems:
        raise InvalidInput("--eval-problems", f"no held-out problem is left in {source} once those that share a "
                                              "question with the study's problems are set apart: give a larger "
                                              "file or a smaller --n")
    if len(problems) < args.eval_problems:
        say(f"held-out: only {len(problems)} distinct problems in {source} share no question with the study's; "
            f"evaluating on those (--eval-problems {args.eval_problems})")
    trained_on = {normalized_question(t.question) for t in training}
    return problems, {"source": source, "problems": len(problems), "left_out_for_overlap": overlapping,
                      "shared_with_training": sum(normalized_question(p.question) in trained_on for p in problems)}


def sampling(args: argparse.Namespace) -> records_pb2.SamplingSpec:
    return records_pb2.SamplingSpec(samples_per_problem=args.k, max_new_tokens=args.max_new_tokens,
                                    temperature=args.temperature, seed=args.seed)


def study_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What defines the study: recorded in study.json (a resume must match) and printed in the report."""
    oracle = args.oracle_endpoint and f"{args.oracle_model or 'default model'} at {args.oracle_endpoint}" or (
        args.oracle_model or f"rule-based teacher ({args.teacher_register})")
    preset = PRESETS[args.train_preset]
    return {"learner": args.model, "oracle": oracle, "engine": args.engine, "problems": args.problems, "n": args.n,
            "problem_seed": args.problem_seed, "family_options": args.family_option or [], "k": args.k,
            "temperature": args.temperature, "max_new_tokens": args.max_new_tokens, "seed": args.seed,
            "policies": args.policies, "budget_steps": args.budget_steps, "budget_epochs": args.budget_epochs,
            "seeds": args.seeds, "matched": args.matched, "train_preset": args.train_preset,
            "learning_rate": preset["learning_rate"], "loss_type": args.loss_type, "eval_problems": args.eval_problems,
            "eval_k": args.eval_k, "eval_family": args.eval_family, "eval_max_new_tokens": args.eval_max_new_tokens,
            "min_step_accuracy": args.min_step_accuracy,
            "oracle_prompts": sorted(all_templates()) if args.oracle_endpoint or args.oracle_model else []}


def write_messages(path: Path, messages) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as out:
        for message in messages:
            out.write(MessageToJson(message, indent=None) + "\n")
    partial.replace(path)


def read_messages(path: Path, message_type):
    with open(path, encoding="utf-8") as lines:
        return [Parse(line, message_type()) for line in lines if line.strip()]


def phase_bar(total: int, description: str) -> Progress:
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=errors, disable=not errors.is_terminal)
    bar.add_task(description, total=total)
    return bar


STUDY_CALLS = CALLABLE  # the study calls every service a CLI command may
MATCHED_EPOCHS = 4.0
SCORE_CHUNK = 32  # built traces per scoring call (well inside the scorers' intake limits)


class StudyRun:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = Path(args.out)
        self.state = StudyState(self.out)
        self._stack: LocalStack | None = None
        self._addresses: StackAddresses | None = None

    # -- the stack: one given by its addresses, else a local one started only for the phases that need it ----------

    def addresses(self) -> StackAddresses:
        if self._addresses is None:
            self._addresses = given_addresses(self.args, STUDY_CALLS)
            if self._addresses is not None:
                say(f"study on the running stack at gateway {self._addresses.gateway}")
        if self._addresses is None:
            prepare_models(self.args.model)
            config = stack_config(self.args)
            config["trainer"]["train"]["eval_problems"] = 0  # the study evaluates on a held-out set of its own
            # While it trains and evaluates, the trainer is the only busy service: it takes every core (measured
            # here: held-out sampling 1.34x faster on 2 threads than on 1).
            config["trainer"]["train"].setdefault("evaluator", {}).setdefault("torch_threads", os.cpu_count() or 1)
            config["curator"] = {"curation": {"min_step_accuracy": self.args.min_step_accuracy}}
            self._stack = LocalStack(self.out / "stack", common={"log": {"level": self.args.log_level}},
                                     config=config)
            started = time.monotonic()
            self._stack.start(on_progress=say)
            say(f"stack up in {time.monotonic() - started:.1f}s; logs in {self.out / 'stack' / 'logs'}")
            self._addresses = StackAddresses.of(self._stack)
        return self._addresses

    def check_alive(self) -> None:
        if self._stack is not None:
            self._stack.check_alive()

    def stub(self, service: str, stub_type):
        return stub_type(self.addresses().channel(service))

    def stop(self) -> None:
        if self._stack is not None:
            say("stopping the local stack")
            self._stack.stop()

    # -- phases --------------------------------------------------------------------------------------------------

    def run(self) -> None:
        for phase, action in (("curate", self.curate), ("select", self.select), ("train", self.train),
                              ("report", self.report)):
            if self.state.done(phase):
                say(f"{phase}: done in an earlier run, kept")
                continue
            started = time.monotonic()
            result = action()
            result["seconds"] = round(time.monotonic() - started, 1)
            self.state.finish(phase, result)
            say(f"{phase}: done in {result['seconds']:.0f}s")

    def curate(self) -> dict[str, Any]:
        problems = study_problems(self.args)
        modes = oracle_modes(self.args.policies)
        request = services_pb2.SubmitBatchRequest(problems=problems, sampling=sampling(self.args),
                                                  curation_policy="rejection_sampling", oracle_modes=modes)
        gateway = self.stub("gateway", services_pb2_grpc.GatewayStub)
        say(f"curate: {len(problems)} problems x {self.args.k} learner samples, Oracle modes "
            f"{', '.join(n for n, m in MODES_BY_NAME.items() if m in modes) or 'none'}")
        started = time.monotonic()
        batch_id = gateway.SubmitBatch(request).batch_id
        status = wait_for_batch(gateway, batch_id, self.args.timeout, started, self.check_alive)
        candidates = self.scored_candidates(batch_id, status.samples_scored + status.oracle_scored)
        write_messages(self.out / "candidates.jsonl", candidates)
        say(f"curate: {len(candidates)} scored candidates ({status.samples_correct} of {status.samples_scored} "
            f"learner samples correct; {status.oracle_scored} Oracle outputs accepted, {status.oracle_rejected} "
            "rejected by guardrails)")
        return {"batch_id": batch_id, "problems": len(problems), "candidates": len(candidates),
                "learner_samples": status.samples_scored, "learner_correct": status.samples_correct,
                "oracle_accepted": status.oracle_scored, "oracle_rejected": status.oracle_rejected,
                "oracle_rejections": dict(status.oracle_rejections)}

    def scored_candidates(self, batch_id: str, expected: int) -> list[records_pb2.Trajectory]:
        """The batch's scored trajectories, read off the `scored` topic (the gateway keeps only their summaries)."""
        found: dict[str, records_pb2.Trajectory] = {}

        def fold(trajectory: records_pb2.Trajectory) -> None:
            if trajectory.problem.batch_id == batch_id:
                found[trajectory.id] = trajectory

        bus = self.addresses().bus("learnerfit-study")
        follower = TopicFollower(bus, {topics.SCORED: records_pb2.Trajectory}, fold)
        stop = threading.Event()
        reading = follower.start(stop)  # running before caught_up() is asked, so that call waits instead of spinning
        try:
            deadline = time.monotonic() + 60
            while len(found) < expected and time.monotonic() < deadline:
                follower.caught_up(timeout_s=5)
        finally:
            stop.set()
            reading.join(timeout=10)
            bus.close()
        if len(found) < expected:
            raise TimeoutError(f"read {len(found)} of the batch's {expected} scored candidates off the scored topic")
        return sorted(found.values(), key=lambda t: (t.problem.id, t.origin, t.sample_index, t.id))

    def select(self) -> dict[str, Any]:
        """One training set per arm over the same candidates (a policy's through the curator's Curate; a built one
        written here, then scored by the reward and drift scorers as candidates are); matched, cut to the problems
        every arm covers."""
        candidates = read_messages(self.out / "candidates.jsonl", records_pb2.Trajectory)
        problems = {t.problem.id: t.problem for t in candidates}
        curator = self.stub("curator", services_pb2_grpc.CuratorStub)
        sets: dict[str, list[records_pb2.CuratedExample]] = {}
        result: dict[str, Any] = {"arms": {}}
        with phase_bar(len(self.args.policies), "select: one training set per arm") as bar:
            for arm in self.args.policies:
                policy = curated_by(arm)
                if policy:
                    chosen = curator.Curate(services_pb2.CurateRequest(
                        trajectories=candidates_for(arm, candidates), policy=policy), timeout=300).examples
                    for example in chosen:
                        example.policy = arm  # a split arm's examples are style_aligned's, labelled by their arm
                    sets[arm] = list(chosen)
                else:
                    written, skipped = built_trajectories(arm, [problems[p] for p in sorted(problems)])
                    sets[arm] = built_set(arm, self.scored(written))
                    if skipped:
                        say(f"select: {arm}: {len(skipped)} problems left out ({skipped[0]}, ...)")
                bar.advance(bar.task_ids[0])
        if self.args.matched:
            sets, shared = matched(sets)
            result["matched_problems"] = len(shared)
            say(f"select: matched: every arm on the {len(shared)} problems all of them cover, one trace each")
        equal, rewrites = rewrites_equal_to_parent(candidates)
        result |= {"rewrites": rewrites, "rewrites_equal_to_parent": equal}
        (self.out / "sets").mkdir(parents=True, exist_ok=True)
        for arm, examples in sets.items():
            write_messages(self.out / "sets" / f"{arm}.jsonl", examples)
            save_training_set(examples, self.out / "datasets" / arm, {
                "policy": arm, "learner": self.args.model, "oracle": study_settings(self.args)["oracle"],
                "problems": self.args.problems, "problems_in_study": len(problems),
                "oracle_prompts": sorted({pid for t in candidates for pid in t.prompt_ids})})
            say(f"select: {arm}: {len(examples)} examples, covering {len({e.problem_id for e in examples})} of "
                f"{len(problems)} problems")
            result["arms"][arm] = {"examples": len(examples), "problems": len(problems)}
        return result

    def scored(self, trajectories: list[records_pb2.Trajectory]) -> list[records_pb2.Trajectory]:
        """A built set's traces through the reward scorer (verdict, reward, steps) and the drift scorer (the base
        model's perplexity and RSR), as the pipeline scores its candidates."""
        reward = self.stub("reward_scorer", services_pb2_grpc.RewardScorerStub)
        drift = self.stub("drift_scorer", services_pb2_grpc.DriftScorerStub)
        scored = []
        for start in range(0, len(trajectories), SCORE_CHUNK):
            chunk = trajectories[start:start + SCORE_CHUNK]
            chunk = reward.ScoreTrajectories(services_pb2.ScoreTrajectoriesRequest(trajectories=chunk),
                                             timeout=self.args.timeout).trajectories
            scored += drift.ScoreDrift(services_pb2.ScoreDriftRequest(trajectories=chunk, checkpoint="base"),
                                       timeout=self.args.timeout).trajectories
        return scored

    def held_out(self) -> list[records_pb2.Problem]:
        """The study's held-out problems: drawn once (held-out.jsonl), the same for the base and every checkpoint."""
        path = self.out / "held-out.jsonl"
        if not path.exists():
            problems, about = held_out_problems(self.args, study_problems(self.args))
            write_messages(path, problems)
            self.state.data["held_out"] = about
            self.state.save()
        return read_messages(path, records_pb2.Problem)

    def evaluate(self, trainer, held_out: list[records_pb2.Problem], name: str, version: str) -> dict[str, float]:
        """The trainer samples `version` on the study's held-out problems; every judged sample is kept
        (eval/NAME.jsonl), the summary returned."""
        request = services_pb2.EvaluateRequest(version=version, problems=held_out, k=self.args.eval_k,
                                               max_new_tokens=self.args.eval_max_new_tokens)
        reply = trainer.Evaluate(request, timeout=self.args.timeout)
        (self.out / "eval").mkdir(parents=True, exist_ok=True)
        write_messages(self.out / "eval" / f"{name}.jsonl", reply.samples)
        return dict(reply.eval)

    def outcomes(self, name: str) -> dict[str, list[bool]]:
        """One evaluation's held-out samples (eval/NAME.jsonl): problem id -> whether each sample was right."""
        return outcomes(read_messages(self.out / "eval" / f"{name}.jsonl", services_pb2.HeldOutSample))

    def seeds(self) -> range:
        return range(self.args.seeds)

    def train(self) -> dict[str, Any]:
        """The base model's score, then one checkpoint per arm and training seed from the base; each recorded as it
        lands, and one registered before an interruption (same arm, examples, seed and budget) is taken instead of
        trained again."""
        progress = self.state.data.setdefault("training", {})
        trainer = self.stub("trainer", services_pb2_grpc.TrainerStub)
        registry = RegistryClient(self.addresses().registry)
        sets = {arm: read_messages(self.out / "sets" / f"{arm}.jsonl", records_pb2.CuratedExample)
                for arm in self.args.policies}
        todo = [(arm, seed) for arm in self.args.policies if sets[arm] for seed in self.seeds()]
        key = f"avg@{self.args.eval_k}"
        held_out = self.held_out()
        about = self.state.data["held_out"]
        say(f"held-out: {len(held_out)} problems from {about['source']}, {about['shared_with_training']} sharing a "
            f"question with the study's ({about['left_out_for_overlap']} such left out)")
        with phase_bar(1 + len(todo), "train: base model, then one checkpoint per arm and seed") as bar:
            task = bar.task_ids[0]
            if "base" not in progress:
                say(f"train: scoring the base model on {len(held_out)} held-out problems x {self.args.eval_k}")
                progress["base"] = self.evaluate(trainer, held_out, "base", "base")
                self.state.save()
            say(f"train: base model {key} {progress['base'].get(key, 0.0):.3f}")
            bar.advance(task)
            for arm, seed in todo:
                run = run_name(arm, seed)
                if run not in progress:
                    examples = sets[arm]
                    checkpoint = self.registered(registry, arm, examples, seed, self.args.budget_epochs)
                    if checkpoint is None:
                        say(f"train: {run}: {len(examples)} examples, {budget_text(self.args)} from the base")
                        given = services_pb2.ExampleSet(examples=examples, seed=seed)
                        if self.args.budget_epochs:
                            given.epochs = self.args.budget_epochs
                        checkpoint = trainer.Train(services_pb2.TrainRequest(given=given, start_from="base"),
                                                   timeout=self.args.timeout).checkpoint
                    progress[run] = {"arm": arm, "seed": seed, "version": checkpoint.version,
                                     "examples": len(checkpoint.example_ids), "steps": checkpoint.training.steps,
                                     "eval": self.evaluate(trainer, held_out, run, checkpoint.version)}
                    self.state.save()
                say(f"train: {run}: {progress[run]['version']} {key} {progress[run]['eval'].get(key, 0.0):.3f}")
                bar.advance(task)
        return {"checkpoints": {run_name(arm, seed): progress[run_name(arm, seed)]["version"] for arm, seed in todo}}

    @staticmethod
    def registered(registry: RegistryClient, arm: str, examples, seed: int,
                   epochs: float | None) -> records_pb2.Checkpoint | None:
        """A checkpoint already trained from the base on exactly these examples for `arm`, with this seed and
        budget, among every page of the registry."""
        wanted = sorted(e.id for e in examples)
        return next((c for c in registry.list() if c.policy == arm and sorted(c.example_ids) == wanted
                     and c.training.start_from == "base" and c.training.seed == seed
                     and (not epochs or c.training.epochs == epochs)), None)

    def report(self) -> dict[str, Any]:
        args, progress = self.args, self.state.data.get("training", {})
        arms = []
        for arm in args.policies:
            runs = [progress[run_name(arm, seed)] for seed in self.seeds() if run_name(arm, seed) in progress]
            arms.append(PolicyResult(
                arm, read_messages(self.out / "sets" / f"{arm}.jsonl", records_pb2.CuratedExample),
                checkpoints=[r["version"] for r in runs],
                outcomes=[self.outcomes(run_name(arm, r["seed"])) for r in runs],
                held_out={k: mean(r["eval"][k] for r in runs) for k in EVAL_SHARES if runs and k in runs[0]["eval"]}))
        key = f"avg@{args.eval_k}"
        checkpoints = [{"version": t["version"], "arm": t["arm"], "seed": t["seed"], "trained from": "base",
                        "examples": t["examples"], "optimizer steps": t.get("steps", "-"),
                        key: f"{t['eval'].get(key, float('nan')):.3f}"}
                       for run, t in progress.items() if run != "base"]
        study = Study(settings=study_settings(args),
                      candidates=read_messages(self.out / "candidates.jsonl", records_pb2.Trajectory),
                      policies=arms, problems=self.state.result("curate").get("problems", args.n),
                      base_outcomes=self.outcomes("base") if "base" in progress else {},
                      base_eval=progress.get("base", {}),
                      timings={p: self.state.result(p).get("seconds", 0.0) for p in ("curate", "select", "train")},
                      checkpoints=checkpoints, held_out=self.state.data.get("held_out", {}),
                      arms={k: v for k, v in self.state.result("select").items() if k != "arms"})
        paths = write_report(study, self.out)
        say(f"report: {paths['html'].resolve()} (and summary.md, plots/)")
        return {"files": sorted(str(p.relative_to(self.out)) for p in paths.values())}


EVAL_SHARES = ("unparsed", "truncated", "parsed_accuracy", "first_answer_accuracy")  # averaged over an arm's seeds


def run_name(arm: str, seed: int) -> str:
    """One training of an arm: its record in study.json and its evaluation file (eval/NAME.jsonl)."""
    return f"{arm}.seed{seed}"


def budget_text(args: argparse.Namespace) -> str:
    return f"{args.budget_epochs:g} passes" if args.budget_epochs else f"{args.budget_steps} steps"


def cmd_study(args: argparse.Namespace) -> int:
    if args.n < 1 or args.k < 1 or args.budget_steps < 1 or args.seeds < 1:
        raise InvalidInput("--n/--k/--budget-steps/--seeds", "must each be at least 1")
    if args.budget_epochs is not None and args.budget_epochs <= 0:
        raise InvalidInput("--budget-epochs", f"{args.budget_epochs} passes: give a positive number")
    if args.matched and args.budget_epochs is None:
        args.budget_epochs = MATCHED_EPOCHS  # matched sets are equal in size: the same passes, the same steps
    if not 0.0 <= args.min_step_accuracy <= 1.0:
        raise InvalidInput("--min-step-accuracy", f"{args.min_step_accuracy} is not a share between 0 and 1")
    validate_sampling(sampling(args), IntakeLimits(), "sampling")  # bad options fail before a stack starts
    args.registry = str(Path(args.out) / "registry")  # the study's checkpoints stay with the study
    args.max_steps = args.budget_steps
    args.eval_family = args.eval_family or (args.problems if not Path(args.problems).suffix else "basic_arithmetic")
    run = StudyRun(args)
    run.state.check_same_study(study_settings(args))
    if args.rewrite_report:
        run.state.data.get("phases", {}).pop("report", None)  # written again from what the study recorded
    try:
        run.run()
    except KeyboardInterrupt:
        say(f"study interrupted; the same command resumes it (progress in {run.state.path})")
        raise
    finally:
        run.stop()
    return 0


def register(commands, common: argparse.ArgumentParser) -> None:
    study = commands.add_parser(
        "study", parents=[common], help="which data helps your learner: one problem set, one checkpoint per arm and "
                                        "seed, a report",
        description="Runs the pipeline once over one problem set, builds one training set per arm from the same "
                    "candidates (a curation policy's choice, or a set the study writes itself: a format-only control, "
                    "the rule-based teacher's solutions in each register), fine-tunes one checkpoint per arm and "
                    "training seed from the same base with the same budget (the trainer service), scores each and "
                    "the base on the same held-out problems, and writes a report (report.html, summary.md, plots/, "
                    "datasets/) with paired intervals and the difference the study can resolve. An interrupted "
                    "study resumes where it stopped: run the same command again.")
    study.add_argument("--problems", default="basic_arithmetic",
                       help="a JSONL file of problems or a reasoning-gym family (default: %(default)s, kept easy)")
    study.add_argument("--n", type=int, default=24, help="problems in the study (default: %(default)s)")
    study.add_argument("--k", type=int, default=8, help="learner samples per problem (default: %(default)s)")
    study.add_argument("--policies", "--arms", type=arm_list, default=list(DEFAULT_ARMS), metavar="ARMS",
                       help=f"comma-separated arms to compare (default: {', '.join(DEFAULT_ARMS)}). Arms: {ARMS_HELP}")
    study.add_argument("--seeds", type=int, default=1,
                       help="training seeds per arm: one checkpoint each, and training noise in the intervals "
                            "(default: %(default)s)")
    study.add_argument("--matched", action="store_true",
                       help="every arm trained on the problems all of them cover, one trace each, for the same "
                            f"passes (--budget-epochs, default {MATCHED_EPOCHS:g} when matched)")
    study.add_argument("--out", default=".learnerfit/study", help="output folder; holds the study's progress too "
                                                                  "(default: %(default)s)")
    study.add_argument("--budget-steps", type=int, default=8,
                       help="optimizer steps of training per checkpoint, the same for every set (default: "
                            "%(default)s)")
    study.add_argument("--budget-epochs", type=float,
                       help="passes over each set instead of a step budget (sets of one size then get the same steps)")
    study.add_argument("--eval-family", help="reasoning-gym family of the held-out problems (default: the study's "
                                             "family, with its options; a JSONL study is evaluated on the rows of "
                                             "its file after the first --n)")
    study.add_argument("--min-step-accuracy", type=float, default=0.0, metavar="SHARE",
                       help="every policy keeps a correct candidate only if at least this share of its arithmetic "
                            "steps hold, as the reward scorer checks them (1: every step; default: %(default)s, off; "
                            "local stack only: a running stack's curator has its own setting)")
    study.add_argument("--eval-max-new-tokens", type=int, default=TrainSettings().eval_max_new_tokens,
                       help="tokens per held-out sample; samples cut there are counted as truncated (default: "
                            "%(default)s)")
    study.add_argument("--family-option", action="append", metavar="KEY=VALUE",
                       help="reasoning-gym option, repeatable; replaces the easy defaults")
    study.add_argument("--problem-seed", type=int, default=0, help="seed of the problem generator")
    study.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default: %(default)s)")
    study.add_argument("--max-new-tokens", type=int, default=64, help="tokens per sample (default: %(default)s)")
    study.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    study.add_argument("--rewrite-report", action="store_true",
                       help="write the report again from what a finished study recorded (nothing else is redone)")
    study.add_argument("--timeout", type=float, default=3600,
                       help="longest wait for one phase step, e.g. one training (default: %(default)s)")
    add_stack_options(study)
    add_training_options(study)
    add_address_options(study, STUDY_CALLS)
    study.set_defaults(func=cmd_study)
