"""What the CLI shows people: messages, tables (rich), batch progress (a progress bar on a terminal, a line per
change in a log), and curated examples as JSON records."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from google.protobuf.json_format import MessageToDict
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from learnerfit.domain.oracle.spend import batch_spend
from learnerfit.domain.records import mode_name, origin_name, verdict_name
from learnerfit.v1 import records_pb2, services_pb2

# Tables go to stdout; on a pipe rich would wrap at 80 columns, so give it room.
console = Console(width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def say(message: str) -> None:
    print(f"learnerfit: {message}", file=sys.stderr, flush=True)


def table(header: tuple[str, ...], rows: list[tuple]) -> Table:
    out = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name in header:
        out.add_column(name, justify="right", overflow="fold")  # a long path wraps, not elided
    for row in rows:
        out.add_row(*(str(c) for c in row))
    return out


def summary_table(status: records_pb2.BatchStatus, elapsed: float) -> Table:
    return table(("problems", "samples", "correct", "unparsed", "curated", "time"),
                 [(status.problems, status.samples_scored, status.samples_correct, status.samples_unparsed,
                   status.curated, f"{elapsed:.1f}s")])


def scores_table(status: records_pb2.BatchStatus) -> Table:
    """Quality (reward), compatibility (learner perplexity) and style of the batch's trajectories, by origin and
    verdict."""
    def cell(summary, field: str, digits: int) -> str:
        return f"{getattr(summary, field):.{digits}f}" if summary.HasField(field) else "-"

    return table(("origin", "mode", "verdict", "samples", "mean reward", "mean ppl", "rsr", "mean tokens",
                  "latex/word", "kept of parent"),
                 [(origin_name(s.origin), mode_name(s.oracle_mode) if s.oracle_mode else "-", verdict_name(s.verdict),
                   s.samples, cell(s, "mean_reward", 3),
                   cell(s, "mean_ppl", 2), cell(s, "mean_rsr", 2), cell(s, "mean_tokens", 1),
                   cell(s, "mean_latex_density", 3),
                   cell(s, "mean_overlap", 2)) for s in status.summaries])


def spend_table(status: records_pb2.BatchStatus) -> Table:
    """What the batch's Oracle outputs took, by origin, mode and model: outputs written, rejected and curated; what
    each accepted and each curated example cost (all the origin's spend, rejected outputs included, over the
    examples it gave); what the rejected outputs cost; outputs not asked for once the budget ran out."""
    def usd(value: float | None) -> str:
        return "-" if value is None else f"${value:.6f}" if value < 0.01 else f"${value:.4f}"

    rows = []
    for s in status.oracle_spend:
        cost = s.cost_usd if s.HasField("cost_usd") else None
        accepted = s.outputs - s.rejected
        rows.append((origin_name(s.origin), mode_name(s.oracle_mode) if s.oracle_mode else "-", s.model,
                     s.outputs, s.rejected, s.curated, f"{s.prompt_tokens}/{s.completion_tokens}", usd(cost),
                     usd(cost / accepted) if cost is not None and accepted else "-",
                     usd(cost / s.curated) if cost is not None and s.curated else "-",
                     usd(s.rejected_cost_usd if s.HasField("rejected_cost_usd") else 0.0 if cost is not None
                         else None), s.refused or "-"))
    return table(("origin", "mode", "model", "out", "rej", "cur", "tokens in/out", "cost", "per accepted",
                  "per curated", "rejected cost", "not asked"), rows)


def spend_line(status: records_pb2.BatchStatus) -> str:
    spend = status.oracle_spend
    tokens, cost = batch_spend(status)
    priced = any(s.HasField("cost_usd") for s in spend)
    line = f"oracle spend: {tokens} tokens" + (f", ${cost:.6f}" if priced else
                                               " (no price set: --oracle-price or the setting oracle.prices)")
    counted = sum(s.counted for s in spend)
    if counted:
        line += f"; {counted} outputs' tokens counted here (the endpoint reported no usage)"
    budget = status.oracle_budget
    caps = ([f"${budget.max_cost_usd:g}"] if budget.HasField("max_cost_usd") else []) + (
        [f"{budget.max_tokens} tokens"] if budget.HasField("max_tokens") else [])
    if caps:
        line += f"; budget {' and '.join(caps)}"
    if status.oracle_budget_exhausted:
        line += (f": exhausted, {sum(s.refused for s in spend)} Oracle outputs not asked for (their problems "
                 "decided on what they had)")
    return line + ("; per accepted/curated: an origin's whole spend, its rejected outputs' included, over its "
                   "accepted or curated examples" if priced else "")


def print_batch(status: records_pb2.BatchStatus, elapsed: float) -> None:
    console.print(summary_table(status, elapsed))
    console.print(scores_table(status))
    if status.oracle_expected:
        reasons = ", ".join(f"{name} {count}" for name, count in sorted(status.oracle_rejections.items()))
        console.print(f"oracle outputs: {status.oracle_scored} accepted and scored, {status.oracle_rejected} rejected "
                      f"by guardrails ({reasons or 'none'}; each with its reason on topic oracle-rejected), of "
                      f"{status.oracle_expected}", highlight=False)
    if status.oracle_spend:
        console.print(spend_table(status))
        console.print(spend_line(status), highlight=False)
    if status.problems_failed:
        console.print(f"{status.problems_failed} problems failed (a stage dead-lettered a record; "
                      "`learnerfit dead-letters` lists them, `--replay ID` puts one back):", highlight=False)
        console.print(table(("problem", "stage", "reason"),
                            [(f.problem_id, f.stage, f.reason[:100]) for f in status.failures]))


def progress_line(status: records_pb2.BatchStatus, elapsed: float) -> str:
    return (f"[{elapsed:6.1f}s] samples generated {status.samples_generated}/{status.samples_expected}"
            f" · scored {status.samples_scored} · correct {status.samples_correct}"
            f" · problems decided {status.problems_decided}/{status.problems} · curated {status.curated}"
            + (f" · failed {status.problems_failed}" if status.problems_failed else "")
            + _oracle_count(status, f" ({status.oracle_rejected} rejected)"))


def _counts(status: records_pb2.BatchStatus) -> str:
    return (f"correct {status.samples_correct} · decided {status.problems_decided}/{status.problems} · "
            f"curated {status.curated}" + _oracle_count(status))


def _oracle_count(status: records_pb2.BatchStatus, detail: str = "") -> str:
    """Oracle outputs arrived of expected, once the batch asked for any."""
    if not (status.oracle_expected or status.oracle_scored):
        return ""
    return f" · oracle {status.oracle_scored + status.oracle_rejected}/{status.oracle_expected or '?'}{detail}"


def follow_batch(get_status: Callable[[], records_pb2.BatchStatus], timeout_s: float, started: float,
                 check: Callable[[], None] = lambda: None, interval_s: float = 1.0,
                 heartbeat_s: float = 15.0) -> records_pb2.BatchStatus:
    """Shows progress until the batch is complete; raises TimeoutError past timeout_s.

    On a terminal: a progress bar over the samples scored, with counts and an ETA. In a log:
    a line when the counts change, or every heartbeat_s to show the run is alive.
    """
    if not errors.is_terminal:
        return _follow_in_lines(get_status, timeout_s, started, check, interval_s, heartbeat_s)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[counts]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=errors, transient=False) as bar:
        task = bar.add_task("samples scored", total=None, counts="")
        while True:
            check()
            status = get_status()
            bar.update(task, total=status.samples_expected or None, completed=status.samples_scored,
                       counts=_counts(status))
            if status.state == records_pb2.BATCH_STATE_COMPLETE:
                return status
            _check_timeout(status, started, timeout_s)
            time.sleep(interval_s)


def _follow_in_lines(get_status, timeout_s, started, check, interval_s, heartbeat_s) -> records_pb2.BatchStatus:
    last_counts, last_print = None, 0.0
    while True:
        check()
        status = get_status()
        counts = (status.samples_generated, status.samples_scored, status.problems_decided, status.curated,
                  status.oracle_scored, status.oracle_rejected)
        if counts != last_counts or time.monotonic() - last_print >= heartbeat_s:
            print(progress_line(status, time.monotonic() - started), file=sys.stderr, flush=True)
            last_counts, last_print = counts, time.monotonic()
        if status.state == records_pb2.BATCH_STATE_COMPLETE:
            return status
        _check_timeout(status, started, timeout_s)
        time.sleep(interval_s)


def _check_timeout(status: records_pb2.BatchStatus, started: float, timeout_s: float) -> None:
    if time.monotonic() - started > timeout_s:
        raise TimeoutError(f"batch {status.batch_id} not complete after {timeout_s:.0f}s: "
                           f"{progress_line(status, time.monotonic() - started)}")


def example_record(example: records_pb2.CuratedExample) -> dict:
    """A curated example as one JSON object (TRL reads "messages")."""
    record = MessageToDict(example, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    record["origin"] = origin_name(example.origin)
    record["scores"]["verdict"] = verdict_name(example.scores.verdict)
    return record


def status_record(status: records_pb2.BatchStatus | services_pb2.SubmitBatchResponse) -> dict:
    return MessageToDict(status, preserving_proto_field_name=True)
