"""Every benchmark runs end to end on a tiny input and prints well-formed rows (no timing is asserted: the numbers
are the benchmark's to report, docs/benchmarks.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

RATIO = r"\d+\.\d\dx"


def test_the_bus_hop_and_scale_out_benchmarks_run_and_print_their_rows():
    env = {**os.environ, "BENCH_BUS_RECORDS": "300", "BENCH_SCALEOUT_RECORDS": "16", "BENCH_SCALEOUT_WORK_S": "0.02",
           "BENCH_SCALEOUT_SETTLE_S": "0.5"}
    result = subprocess.run([sys.executable, "-m", "bench", "bus", "scaleout"], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if re.match(r"^(bus hop|scale-out)\s", line)]
    assert len(rows) == 3, result.stdout
    assert re.search(rf"stage runner hop \(no-op stage\) \(\d+ rec/s\).*raw kafka-python hop \(\d+ rec/s\)\s+{RATIO}\s+"
                     r">= 0.8\s+(meets|MISSES)", rows[0])
    assert re.search(rf"4 consumer process\(es\) \(\d+ rec/s\).*1 consumer process\(es\).*{RATIO}\s+>= 3.5", rows[2])
    assert "machine:" in result.stdout and "300 records of" in result.stdout


def test_the_model_benchmarks_run_on_the_tiny_learner_and_print_their_rows(tiny_solver):
    env = {**os.environ, "BENCH_GEN_MODEL": str(tiny_solver), "BENCH_GEN_PROBLEMS": "2", "BENCH_GEN_TOKENS": "12",
           "BENCH_GEN_SLOTS": "2,8", "BENCH_PIPE_MODEL": str(tiny_solver), "BENCH_PIPE_PROBLEMS": "2",
           "BENCH_PIPE_TOKENS": "12", "BENCH_DRIFT_MODEL": str(tiny_solver), "BENCH_DRIFT_TRACES": "4"}
    result = subprocess.run([sys.executable, "-m", "bench", "generation", "pipeline", "drift"], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines()
            if re.match(r"^(generation|gen\. sweep|pipeline|drift)\s", line)]
    assert len(rows) == 3 + 2 + 1 + 2, result.stdout
    useful = r"\[\d+% of slots useful\] \(\d+ tok/s\)"
    service = r"generator service via Kafka, 64 slots \[\d+% of slots useful, \d+% full\] \(\d+ tok/s\)"
    assert re.search(rf"{service}\s+raw generate\(\), all rows padded {useful}\s+{RATIO}\s+>= 1.5\s+(meets|MISSES)",
                     rows[0]), rows[0]
    assert re.search(rf"raw generate\(\), 1 problem per call {useful}\s+{RATIO}\s+>= 2.5\s+(meets|MISSES)", rows[1])
    assert re.search(r"slot decoder, 2 slots \[\d+% full\] \(\d+ tok/s\)\s+raw generate\(\), all rows padded", rows[3])
    assert re.search(rf"batch, wall time \(\d+ samples/s\)\s+the same batch, model time only \(\d+ samples/s\)\s+"
                     rf"{RATIO}\s+>= 0.9\s+(meets|MISSES)", rows[5]), rows[5]
    assert re.search(rf"drift scorer service \(gRPC\) \(\d+ tok/s\)\s+raw batched forward \(bs 16\) \(\d+ tok/s\)\s+"
                     rf"{RATIO}\s+>= 0.9", rows[6]), rows[6]
    # The model time came from each model service's own metric (learnerfit_model_seconds_total).
    line = re.search(r"batch ([\d.]+)s wall, model time ([\d.]+)s \(union over stages; per stage: (.*?)\); not model "
                     r"time [\d.]+% of wall", result.stdout)
    assert line, result.stdout
    assert float(line[2]) > 0
    assert "generator" in line[3] and "drift_scorer" in line[3] and "reward_scorer" in line[3]
