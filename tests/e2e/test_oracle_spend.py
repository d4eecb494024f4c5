"""`learnerfit run` against a hosted-style Oracle (the OpenAI-protocol stand-in: no hosted model runs here) with a
price and a token budget: the run prints its spend by origin and per curated example, the budget ends Oracle work
mid-batch and the batch still completes, and what it says it spent is what the endpoint was asked for."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.fake_oracle import FakeOracle

PER_REQUEST = (10, 6)  # the stand-in's usage: prompt and completion tokens of each request
PRICE = (2.0, 8.0)  # USD per million prompt and completion tokens


def _oracle_reply(body, _index):
    """A right answer to every task (the tiny learner is right on 1 + 1 only, so repair is asked for too)."""
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    a, sign, b = re.search(r"Calculate (\d+) ([+-]) (\d+)\.", user).groups()
    equation = f"{a} {sign} {b} = {int(a) + int(b) if sign == '+' else int(a) - int(b)}"
    if system.startswith("You check solutions line by line"):  # repair: which step is wrong
        return "1", "stop"
    if system.startswith("You correct one line"):  # repair: that step, corrected
        return equation, "stop"
    return f"{equation}\nFinal answer: {equation.rsplit(' ', 1)[1]}", "stop"


def test_a_run_on_a_priced_oracle_prints_its_spend_and_a_token_budget_ends_oracle_work_cleanly(tiny_solver, tmp_path):
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"question": f"Calculate {a} + {b}.", "answer": str(a + b)}) + "\n"
                                for a, b in ((1, 1), (3, 1), (5, 2), (4, 4))))
    oracle = FakeOracle(_oracle_reply)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "learnerfit.cli", "--dir", str(tmp_path / "stack"), "run",
             "--model", str(tiny_solver), "--registry", str(tmp_path / "registry"), "--file", str(problems),
             "--samples", "2", "--max-new-tokens", "16", "--oracle", "all", "--oracle-endpoint", oracle.endpoint,
             "--oracle-model", "hosted-oracle", "--oracle-price", ",".join(map(str, PRICE)),
             "--oracle-budget-tokens", "100"],
            capture_output=True, text=True, timeout=600)
    finally:
        oracle.close()
    assert run.returncode == 0, run.stderr[-3000:]
    out = " ".join(run.stdout.split())  # the tables, unwrapped
    asked = len(oracle.requests)
    tokens = asked * sum(PER_REQUEST)
    cost = asked * (PER_REQUEST[0] * PRICE[0] + PER_REQUEST[1] * PRICE[1]) / 1e6
    spent = re.search(r"oracle spend: (\d+) tokens, \$([\d.]+); budget 100 tokens: exhausted, (\d+) Oracle outputs "
                      r"not asked for", out)
    assert spent, run.stdout[-3000:]
    # What the run says it spent is what the endpoint answered: every request, and only those, counted once.
    assert int(spent[1]) == tokens and float(spent[2]) == round(cost, 6)
    # The cap was reached and work was left unasked; the batch completed all the same (rc 0 above). How far past the
    # cap a replica may go is measured exactly in tests/services/test_oracle_spend.py.
    assert tokens >= 100 and int(spent[3]) > 0
    for header in ("model", "tokens in/out", "per accepted", "per curated", "rejected cost", "not asked"):
        assert header in out, run.stdout
    assert "hosted-oracle" in out and "oracle_synthesized" in out
