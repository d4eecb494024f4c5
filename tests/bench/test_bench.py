"""The bus benchmarks run end to end on a tiny input and print well-formed ratios (no timing is asserted: the
numbers are the benchmark's to report, README "Benchmarks")."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def test_bus_hop_and_scale_out_benchmarks_run_and_print_their_rows():
    env = {**os.environ, "BENCH_BUS_RECORDS": "300", "BENCH_SCALEOUT_RECORDS": "16", "BENCH_SCALEOUT_WORK_S": "0.02",
           "BENCH_SCALEOUT_SETTLE_S": "0.5"}
    result = subprocess.run([sys.executable, "-m", "bench", "bus", "scaleout"], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if re.match(r"^(bus hop|scale-out)\s", line)]
    ratio = r"\d+\.\d\dx"
    assert len(rows) == 3, result.stdout
    assert re.search(rf"stage runner hop \(no-op stage\) \(\d+ rec/s\).*raw kafka-python hop \(\d+ rec/s\)\s+{ratio}\s+"
                     r">= 0.8\s+(meets|MISSES)", rows[0])
    assert re.search(rf"4 consumer process\(es\) \(\d+ rec/s\).*1 consumer process\(es\).*{ratio}\s+>= 3.5", rows[2])
    assert "machine:" in result.stdout and "300 records of" in result.stdout
