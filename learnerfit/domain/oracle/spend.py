"""What Oracle work costs, and the budget that caps it.

Each Oracle reply carries its tokens (the endpoint's `usage`, or counted here when it
sends none); a price table per Oracle model (setting oracle.prices, none by default)
turns them into money, so cost is shown only where the user gave a price. Each Oracle
output records both (Trajectory.oracle_usage).

A batch may carry a budget (OracleBudget). Every replica of every Oracle service folds
the Oracle outputs on the topics into a SpendLedger, so all of them see what the batch
has spent, however the work was shared; each adds what it wrote itself before the
topics show it. Before a request is made for a batch that has spent its budget, the
output is rejected as `budget_exhausted` instead: the batch completes, its problems
decided on what they have. Requests for a batch with a budget go out in rounds, as many at once as what is left
of it covers at what its outputs took so far (one, before any is answered), so a batch
passes its cap by about one output's cost per Oracle replica (what a replica had in
flight when another one spent the rest, which it learns from the topics).

The ledger also answers "was this output already written?": an Oracle service replaying
inputs after a crash (its outputs published, its commit lost) skips outputs the topics
already hold instead of paying for them again.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable

from pydantic import Field

from learnerfit.domain import topics
from learnerfit.domain.inference import Conversation, TokenUsage
from learnerfit.section import Section
from learnerfit.v1 import records_pb2

BUDGET_EXHAUSTED = "budget_exhausted"
# The topics an Oracle service folds into its SpendLedger: every Oracle output, accepted or rejected.
SPEND_TOPICS = {topics.TRAJECTORIES: records_pb2.Trajectory, topics.ORACLE_REJECTED: records_pb2.Trajectory}
CHARS_PER_TOKEN = 4  # the estimate where neither the endpoint nor a tokenizer says

# Counts a request's tokens where the endpoint reported none: (prompt, completion text, tokens the engine said it
# generated, 0 when unknown) -> usage, marked counted.
TokenCounter = Callable[[Conversation, str, int], TokenUsage]


def estimate_tokens(conversation: Conversation, text: str, generated: int) -> TokenUsage:
    prompt = sum(len(m["content"]) for m in conversation)
    return TokenUsage(math.ceil(prompt / CHARS_PER_TOKEN), generated or math.ceil(len(text) / CHARS_PER_TOKEN),
                      counted=True, estimated=True)


class Price(Section):
    """What an Oracle model's provider charges, in US dollars per million tokens."""

    input_per_million: float = Field(ge=0, description="Prompt tokens, USD per million.")
    output_per_million: float = Field(ge=0, description="Completion tokens, USD per million.")
    cached_input_per_million: float | None = Field(None, ge=0, description="Prompt tokens served from the "
                                                                           "provider's cache (unset: the input price).")

    def cost(self, usage: TokenUsage) -> float:
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cached_price = self.input_per_million if self.cached_input_per_million is None \
            else self.cached_input_per_million
        return ((usage.prompt_tokens - cached) * self.input_per_million + cached * cached_price
                + usage.completion_tokens * self.output_per_million) / 1e6


def usage_record(usage: TokenUsage | None, price: Price | None) -> records_pb2.OracleUsage:
    """The usage an Oracle output records; None: no model was asked (the rule-based teacher, a refusal)."""
    if usage is None:
        return records_pb2.OracleUsage(source=records_pb2.USAGE_SOURCE_NONE)
    source = (records_pb2.USAGE_SOURCE_ESTIMATED if usage.estimated else records_pb2.USAGE_SOURCE_COUNTED
              if usage.counted else records_pb2.USAGE_SOURCE_REPORTED)
    record = records_pb2.OracleUsage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                                     cached_tokens=usage.cached_tokens, source=source, requests=usage.requests)
    if price is not None:
        record.cost_usd = price.cost(usage)
    return record


def has_budget(budget: records_pb2.OracleBudget) -> bool:
    return budget.HasField("max_cost_usd") or budget.HasField("max_tokens")


class SpendLedger:
    """Oracle spend per batch, by output id: folded from the topics, plus what this process wrote. Bounded: the
    `keep_batches` most recently touched batches."""

    def __init__(self, model: str, priced: bool, keep_batches: int = 10_000):
        self.model, self.priced, self.keep_batches = model, priced, keep_batches
        self._lock = threading.Lock()
        # batch id -> output id -> (tokens, cost); and the output ids seen on the topics
        self._spent: OrderedDict[str, dict[str, tuple[int, float]]] = OrderedDict()
        self._published: OrderedDict[str, set[str]] = OrderedDict()

    def fold(self, message) -> None:
        """A record of the followed topics (trajectories, oracle-rejected): Oracle outputs count, others not."""
        if isinstance(message, records_pb2.Trajectory) and message.origin not in (
                records_pb2.ORIGIN_UNSPECIFIED, records_pb2.ORIGIN_LEARNER_SAMPLE, records_pb2.ORIGIN_REFERENCE):
            self._add(message, published=True)

    def note(self, output: records_pb2.Trajectory) -> None:
        """An output this process wrote (paid for), before the topics show it."""
        self._add(output, published=False)

    def charge(self, batch_id: str, output_id: str, usage: records_pb2.OracleUsage) -> None:
        """What an output's Oracle request took, as soon as it is answered (the output is noted later)."""
        self._record(batch_id, output_id, usage, published=False)

    def affordable(self, problem: records_pb2.Problem) -> float:
        """How many more outputs the batch's budget covers at what its outputs took so far (at least one while it
        is not spent; one before any has been answered): how many to ask for at once."""
        budget = problem.oracle_budget
        if not has_budget(budget):
            return math.inf
        with self._lock:
            paid = [spent for spent in self._spent.get(problem.batch_id, {}).values() if spent[0] > 0]
        if not paid:
            return 1
        tokens, cost = sum(t for t, _ in paid), sum(c for _, c in paid)
        rooms = []
        if budget.HasField("max_tokens"):
            rooms.append((budget.max_tokens - tokens) / (tokens / len(paid)))
        if budget.HasField("max_cost_usd") and cost > 0:
            rooms.append((budget.max_cost_usd - cost) / (cost / len(paid)))
        return max(1, math.floor(min(rooms))) if rooms else math.inf

    def published(self, batch_id: str, output_id: str) -> bool:
        with self._lock:
            return output_id in self._published.get(batch_id, ())

    def spent(self, batch_id: str) -> tuple[int, float]:
        """Tokens (prompt + completion) and cost the batch's Oracle outputs have taken."""
        with self._lock:
            outputs = self._spent.get(batch_id, {}).values()
            return sum(t for t, _ in outputs), sum(c for _, c in outputs)

    def refusal(self, problem: records_pb2.Problem) -> str | None:
        """Why no Oracle request may be made for this problem now (its batch's budget is spent), or None."""
        budget = problem.oracle_budget
        if not has_budget(budget):
            return None
        if budget.HasField("max_cost_usd") and not self.priced:
            return (f"the batch caps its Oracle spend at ${budget.max_cost_usd:g}, but Oracle model {self.model!r} "
                    "has no price (setting oracle.prices): nothing is asked rather than spending without bound")
        tokens, cost = self.spent(problem.batch_id)
        if budget.HasField("max_tokens") and tokens >= budget.max_tokens:
            return f"the batch's Oracle work has taken {tokens} tokens of its budget of {budget.max_tokens}"
        if budget.HasField("max_cost_usd") and cost >= budget.max_cost_usd:
            return f"the batch's Oracle work has cost ${cost:.6f} of its budget of ${budget.max_cost_usd:g}"
        return None

    def _add(self, output: records_pb2.Trajectory, published: bool) -> None:
        self._record(output.problem.batch_id, output.id, output.oracle_usage, published)

    def _record(self, batch_id: str, output_id: str, usage: records_pb2.OracleUsage, published: bool) -> None:
        with self._lock:
            self._spent.setdefault(batch_id, {})[output_id] = (usage.prompt_tokens + usage.completion_tokens,
                                                               usage.cost_usd)
            self._spent.move_to_end(batch_id)
            if published:
                self._published.setdefault(batch_id, set()).add(output_id)
                self._published.move_to_end(batch_id)
            for table in (self._spent, self._published):
                while len(table) > self.keep_batches:
                    table.popitem(last=False)


def batch_spend(status: records_pb2.BatchStatus) -> tuple[int, float]:
    """Tokens (prompt + completion) and cost a batch's Oracle outputs have taken, as the gateway reports them."""
    return (sum(s.prompt_tokens + s.completion_tokens for s in status.oracle_spend),
            sum(s.cost_usd for s in status.oracle_spend if s.HasField("cost_usd")))


class StreamBudget:
    """A stream's Oracle budget, shared out over its batches: each new batch may spend what is left of it less what
    the batches still running may yet spend (their own caps), so the stream's spend stays within its cap (up to
    what each batch had in flight when its own cap was reached)."""

    def __init__(self, cap: records_pb2.OracleBudget):
        self.cap = cap
        self._batches: dict[str, tuple[records_pb2.OracleBudget, tuple[int, float], bool]] = {}

    def next_batch(self) -> records_pb2.OracleBudget:
        tokens = cost = 0.0
        for budget, (spent_tokens, spent_cost), finished in self._batches.values():
            tokens += spent_tokens if finished else max(spent_tokens, budget.max_tokens)
            cost += spent_cost if finished else max(spent_cost, budget.max_cost_usd)
        left = records_pb2.OracleBudget()
        if self.cap.HasField("max_tokens"):
            left.max_tokens = max(0, int(self.cap.max_tokens - tokens))
        if self.cap.HasField("max_cost_usd"):
            left.max_cost_usd = max(0.0, self.cap.max_cost_usd - cost)
        return left

    def submitted(self, batch_id: str, budget: records_pb2.OracleBudget) -> None:
        self._batches[batch_id] = (budget, (0, 0.0), False)

    def update(self, status: records_pb2.BatchStatus) -> None:
        if status.batch_id in self._batches:
            budget = self._batches[status.batch_id][0]
            self._batches[status.batch_id] = (budget, batch_spend(status),
                                              status.state == records_pb2.BATCH_STATE_COMPLETE)

    def spent(self) -> tuple[int, float]:
        return (sum(spent[0] for _, spent, _ in self._batches.values()),
                sum(spent[1] for _, spent, _ in self._batches.values()))
