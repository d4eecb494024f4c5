"""`learnerfit run --output PATH --rounds N`: where each round's curated examples are written."""

from __future__ import annotations

from pathlib import Path

from learnerfit.cli.stack import round_output


def test_each_rounds_output_goes_beside_the_path_given_with_its_round_before_the_suffix():
    assert round_output("./x.jsonl", 2, 2) == Path("x.round2.jsonl")  # was ".round2/x.jsonl": the first dot
    assert round_output("out.d/curated.parquet", 1, 2) == Path("out.d/curated.round1.parquet")
    assert round_output("curated", 3, 3) == Path("curated.round3")
    assert round_output("./x.jsonl", 1, 1) == Path("x.jsonl")
