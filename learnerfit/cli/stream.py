"""`learnerfit stream`: continuous curation on the local stack, until stopped.

Problems flow in from a source (a reasoning-gym family, generated afresh chunk by
chunk, or a JSONL file read once) at a set rate, or as fast as the pipeline takes
them (a bounded number of chunks in flight). Each chunk is a gateway batch; the
trainer trains every `--train-every` curated examples, registers the checkpoint and
announces it, and the learner services follow it. A rolling line says how it goes:
problems per minute, learner accuracy per checkpoint (read off the `scored` topic),
curated, trained on, dead-lettered, and the problems still in flight. Ctrl-C (or
SIGTERM, or `--duration`) stops the intake and drains: the batches in flight settle,
then the trainer trains on every curated example no checkpoint holds yet (those past
the last multiple of `--train-every` too), so nothing curated is left untrained when
the stack stops.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import grpc

from learnerfit.cli.addresses import StackAddresses, add_address_options, given_addresses
from learnerfit.cli.batches import add_problem_options, problems, submit_request
from learnerfit.domain.oracle.spend import StreamBudget, has_budget
from learnerfit.cli.output import console, say
from learnerfit.cli.stack import add_stack_options, add_training_options, check_gate_size, make_stack, prepare_models
from learnerfit.domain import topics
from learnerfit.domain.problems import from_jsonl
from learnerfit.domain.promotion import NOT_PROMOTED, PROMOTED, ROLLED_BACK, followed, state_words
from learnerfit.errors import InvalidInput
from learnerfit.runtime.app import DEAD_LETTER
from learnerfit.runtime.follow import TopicFollower
from learnerfit.v1 import records_pb2, runtime_pb2, services_pb2, services_pb2_grpc
from trainer.config import PRESETS


def chunks(args: argparse.Namespace) -> Iterator[list[records_pb2.Problem]]:
    """--count problems at a time: a family with the next seed each time (endless), or a file once through."""
    if args.file:
        every = from_jsonl(Path(args.file))
        yield from (every[i : i + args.count] for i in range(0, len(every), args.count))
        return
    offset = 0
    while True:
        yield problems(args, seed_offset=offset)
        offset += 1


class StreamTally:
    """What the stream has done, folded from the pipeline's topics: learner samples by checkpoint, curated
    examples, examples some checkpoint was trained on, dead letters (each counted once by id)."""

    def __init__(self) -> None:
        self.samples: dict[str, dict[str, bool]] = defaultdict(dict)  # checkpoint -> sample id -> correct
        self.curated: dict[str, str] = {}  # example id -> batch id
        self.trained: set[str] = set()
        self.dead: set[str] = set()
        self.checkpoints: dict[str, records_pb2.Checkpoint] = {}  # each version's latest announcement
        self.lock = threading.Lock()

    def fold(self, message) -> None:
        with self.lock:
            if isinstance(message, records_pb2.Trajectory):
                if message.origin == records_pb2.ORIGIN_LEARNER_SAMPLE and message.scores.verdict:
                    self.samples[message.checkpoint or "base"][message.id] = (
                        message.scores.verdict == records_pb2.VERDICT_CORRECT)
            elif isinstance(message, records_pb2.CuratedExample):
                self.curated[message.id] = message.batch_id
            elif isinstance(message, records_pb2.Checkpoint):
                self.trained.update(message.example_ids)
                previous = self.checkpoints.get(message.version)
                if previous is None or previous.promotion.state != message.promotion.state:
                    self._note_decision(message)
                self.checkpoints[message.version] = message
            elif isinstance(message, runtime_pb2.DeadLetter):
                self.dead.add(message.id)

    def untrained(self, curated_by_batch: dict[str, int]) -> dict[str, int]:
        """Batches (id -> curated count) with a curated example no checkpoint seen so far holds, or not seen yet."""
        with self.lock:
            seen: dict[str, int] = defaultdict(int)
            waiting = set()
            for example_id, batch_id in self.curated.items():
                seen[batch_id] += 1
                if example_id not in self.trained:
                    waiting.add(batch_id)
            return {b: n for b, n in curated_by_batch.items() if n and (b in waiting or seen[b] < n)}

    @staticmethod
    def _note_decision(checkpoint: records_pb2.Checkpoint) -> None:
        """A promotion decision, said as it is announced (pending and pre-gate checkpoints say nothing)."""
        promotion = checkpoint.promotion
        if promotion.state in (PROMOTED, NOT_PROMOTED, ROLLED_BACK):
            say(f"{checkpoint.version} {state_words(promotion.state)} ({promotion.decided_by}): {promotion.reason}")

    def learner(self) -> str:
        with self.lock:
            current = followed(self.checkpoints.values())
            return current.version if current is not None else "base"

    def accuracy(self) -> str:
        with self.lock:
            return " · ".join(f"{version} {sum(s.values()) / len(s):.2f} ({len(s)})"
                              for version, s in sorted(self.samples.items(), key=lambda kv: _order(kv[0]))) or "-"


def _order(version: str) -> int:
    return int(version[1:]) if version[1:].isdigit() else 0  # base first, then v1, v2, ...


class Stream:
    def __init__(self, args: argparse.Namespace, gateway: services_pb2_grpc.GatewayStub,
                 trainer: services_pb2_grpc.TrainerStub, tally: StreamTally, check_alive=lambda: None):
        self.args, self.gateway, self.trainer, self.tally = args, gateway, trainer, tally
        self.check_alive = check_alive
        self.in_flight: dict[str, int] = {}  # batch id -> problems
        self.curated_by_batch: dict[str, int] = {}  # settled batch id -> examples it curated
        self.submitted = self.settled = self.failed = 0
        self.started = time.monotonic()
        self._source = chunks(args)
        self._next_submit = self.started
        self._exhausted = False
        # --oracle-budget-* cap the whole stream: each batch gets what is left of it
        cap = submit_request(args).oracle_budget
        self.budget = StreamBudget(cap) if has_budget(cap) else None

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        return (f"[{elapsed:7.1f}s] problems/min {self.settled / max(elapsed, 1e-9) * 60:5.1f} · submitted "
                f"{self.submitted} · settled {self.settled} · in flight {self.submitted - self.settled} · curated "
                f"{len(self.tally.curated)} · trained on {len(self.tally.trained)} · dead-lettered "
                f"{len(self.tally.dead)} · learner {self.tally.learner()} · learner accuracy by checkpoint: "
                f"{self.tally.accuracy()}" + (self._spend() if self.budget is not None else ""))

    def _spend(self) -> str:
        tokens, cost = self.budget.spent()
        cap = self.budget.cap
        return (f" · oracle spend {tokens}" + (f"/{cap.max_tokens}" if cap.HasField("max_tokens") else "")
                + " tokens" + (f", ${cost:.6f}/${cap.max_cost_usd:g}" if cap.HasField("max_cost_usd") else ""))

    def run(self, stop: threading.Event) -> None:
        """Feeds and follows until `stop`, the --duration, or the end of a file source; then drains."""
        last_line = 0.0
        while not stop.is_set() and not self._done_feeding():
            self._feed()
            self._collect()
            if time.monotonic() - last_line >= self.args.report_every:
                console.print(self.line(), highlight=False, soft_wrap=True)
                last_line = time.monotonic()
            stop.wait(0.5)
        say(f"draining {len(self.in_flight)} batches in flight (up to {self.args.drain_timeout:.0f}s)")
        deadline = time.monotonic() + self.args.drain_timeout
        while self.in_flight and time.monotonic() < deadline:
            self._collect()
            time.sleep(0.5)
        if self.in_flight:
            say(f"{len(self.in_flight)} batches still running after the drain timeout: {', '.join(self.in_flight)}")
        self._train_the_rest(deadline)
        console.print(self.line(), highlight=False, soft_wrap=True)

    def _train_the_rest(self, deadline: float) -> None:
        """The drain's last step: the trainer trains on the settled batches' curated examples no checkpoint holds
        yet. A Train call names a batch and its count, so it waits for examples still on their way to the trainer,
        and answers with the existing checkpoint when an earlier one already holds them."""
        waiting = self.tally.untrained(self.curated_by_batch)
        if not waiting:
            return
        say(f"the trainer trains on what the last checkpoint does not hold ({len(waiting)} batches)")
        for batch_id, count in waiting.items():
            left = deadline - time.monotonic()
            if left <= 0:
                say(f"drain timeout: batches {', '.join(waiting)} may hold examples no checkpoint was trained on")
                return
            request = services_pb2.TrainRequest(batch=services_pb2.HeldBatch(batch_id=batch_id, min_examples=count))
            try:
                reply = self.trainer.Train(request, timeout=left)
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise
                untrained = sum(waiting.values())
                say(f"the last training did not finish within --drain-timeout ({self.args.drain_timeout:.0f}s): "
                    f"up to {untrained} curated examples of {len(waiting)} batches are in no checkpoint (a running "
                    "stack's trainer trains on them later; the local stack's broker keeps nothing once stopped: give "
                    "--drain-timeout more time to train on them)")
                return
            self.tally.fold(reply.checkpoint)

    def _done_feeding(self) -> bool:
        out_of_time = self.args.duration and time.monotonic() - self.started >= self.args.duration
        return bool(out_of_time) or (self._exhausted and not self.in_flight)

    def _feed(self) -> None:
        """Submits the next chunk when the rate allows and fewer than --max-in-flight batches are running."""
        if self._exhausted or len(self.in_flight) >= self.args.max_in_flight or time.monotonic() < self._next_submit:
            return
        chunk = next(self._source, None)
        if chunk is None:
            self._exhausted = True
            return
        request = submit_request(self.args)
        del request.problems[:]
        request.problems.extend(chunk)
        if self.budget is not None:
            request.oracle_budget.CopyFrom(self.budget.next_batch())
        reply = self.gateway.SubmitBatch(request, timeout=60)
        if not reply.already_submitted:
            self.in_flight[reply.batch_id] = len(chunk)
            self.submitted += len(chunk)
            if self.budget is not None:
                self.budget.submitted(reply.batch_id, request.oracle_budget)
        if self.args.rate:
            self._next_submit = time.monotonic() + len(chunk) / self.args.rate * 60

    def _collect(self) -> None:
        self.check_alive()
        for batch_id in list(self.in_flight):
            status = self.gateway.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id), timeout=30)
            if self.budget is not None:
                self.budget.update(status)
            if status.state == records_pb2.BATCH_STATE_COMPLETE:
                self.settled += self.in_flight.pop(batch_id)
                self.curated_by_batch[batch_id] = status.curated
                self.failed += status.problems_failed


STREAM_CALLS = ("gateway", "trainer")


def cmd_stream(args: argparse.Namespace) -> int:
    if args.rate < 0 or args.max_in_flight < 1 or args.train_every < 1:
        raise InvalidInput("--rate/--max-in-flight/--train-every", "rate must be >= 0, the others >= 1")
    submit_request(args)  # bad options fail here, before anything starts
    addresses = given_addresses(args, STREAM_CALLS)
    if addresses is None:
        check_gate_size(args)  # a running stack's trainer has its own held-out set and gate
    stack = None
    if addresses is None:
        prepare_models(args.model)
        stack = make_stack(args)
        stack.config["trainer"]["train_every"] = args.train_every
        train = stack.config["trainer"]["train"]
        # Small increments: each mixed with as many earlier examples, at the increments preset's rate (bench.increments)
        train["replay"] = args.train_every if args.replay is None else args.replay
        if args.train_preset == "cpu":
            train.update(PRESETS["cpu-increments"])
    stop = threading.Event()
    try:
        if stack is not None:
            stack.start(on_progress=say)
            addresses = StackAddresses.of(stack)
            say(f"stack up; streaming (Ctrl-C drains and stops); logs in {args.dir}/logs")
        else:  # the running stack's trainer trains at its own train_every
            say(f"streaming to the running stack at gateway {addresses.gateway} (Ctrl-C drains and stops)")
        tally = StreamTally()
        bus = addresses.bus("learnerfit-stream")
        follower = TopicFollower(bus, {topics.SCORED: records_pb2.Trajectory,
                                       topics.CURATED: records_pb2.CuratedExample,
                                       topics.CHECKPOINTS: records_pb2.Checkpoint,
                                       DEAD_LETTER: runtime_pb2.DeadLetter}, tally.fold,
                                 from_now=not addresses.local)  # a running stack's earlier records are not ours
        following = follower.start(stop)
        follower.caught_up()  # positioned (at the end, on a running stack) before the first batch goes in
        stream = Stream(args, services_pb2_grpc.GatewayStub(addresses.channel("gateway")),
                        services_pb2_grpc.TrainerStub(addresses.channel("trainer")), tally,
                        stack.check_alive if stack is not None else lambda: None)
        try:
            stream.run(stop)
        except KeyboardInterrupt:
            say("stopping the intake")
            stream.run(_stopped())  # drain
        stop.set()
        following.join(timeout=10)
        bus.close()
    finally:
        stop.set()
        if stack is not None:
            say("stopping the local stack")
            stack.stop()
    return 0


def _stopped() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


def register(commands, common: argparse.ArgumentParser) -> None:
    stream = commands.add_parser(
        "stream", parents=[common], help="continuous curation until stopped: problems in, curated examples and "
                                         "checkpoints out",
        description="Starts the stack and feeds it problems chunk by chunk (each chunk a batch); the trainer trains "
                    "every --train-every curated examples and the learner follows each checkpoint. Prints a rolling "
                    "line; Ctrl-C drains what is in flight (the batches, then the trainer on every curated example no "
                    "checkpoint holds yet) and stops.")
    add_stack_options(stream)
    add_problem_options(stream)
    add_training_options(stream)
    add_address_options(stream, STREAM_CALLS)
    stream.add_argument("--rate", type=float, default=0,
                        help="problems per minute to feed (default: 0, as fast as the pipeline takes them)")
    stream.add_argument("--max-in-flight", type=int, default=2,
                        help="most batches (chunks of --count problems) running at once (default: %(default)s)")
    stream.add_argument("--train-every", type=int, default=32,
                        help="the trainer trains once this many curated examples arrived (default: %(default)s)")
    stream.add_argument("--replay", type=int, default=None,
                        help="earlier curated examples mixed into each training (default: --train-every; 0: the new "
                             "ones alone); with the cpu preset, continuous training runs at lr 3e-4, which kept "
                             "SmolLM2 improving over increments where lr 1e-3 without replay regressed")
    stream.add_argument("--duration", type=float, default=0,
                        help="stop feeding after this many seconds (default: 0, until Ctrl-C)")
    stream.add_argument("--drain-timeout", type=float, default=300,
                        help="after stopping, how long to wait for batches in flight and the trainer's last "
                             "training (default: %(default)s)")
    stream.add_argument("--report-every", type=float, default=10,
                        help="seconds between rolling lines (default: %(default)s)")
    stream.set_defaults(func=cmd_stream)
