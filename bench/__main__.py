"""`make bench` (python -m bench [drift|generation|engines|pipeline|bus|scaleout]): runs the benchmarks, prints one table.

Each ratio is the subject's throughput over a baseline's, both measured in the same
process on the same model (SmolLM2-135M-Instruct) and work: tokens, samples or records;
absolute times are not compared across machines. BENCH_TORCH_THREADS (default 1) sets
torch threads; each benchmark's module says which variables shrink it for a smoke run. `python -m bench.increments`
(training recipes over continuous increments, accuracy rather than throughput, about 50 minutes) runs on its own.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform

import torch

from bench import bus, drift, engines, generation, pipeline, scaleout
from bench.common import THREADS, print_table

BENCHES = {"drift": drift.run, "generation": generation.run, "engines": engines.run, "pipeline": pipeline.run,
           "bus": bus.run, "scaleout": scaleout.run}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("only", nargs="*", help=f"run only these of {', '.join(BENCHES)} (default: all)")
    args = parser.parse_args()
    unknown = sorted(set(args.only) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # a worker reconnecting as the broker stops is not news
    ratios = []
    for name in args.only or BENCHES:
        print(f"running {name} benchmark ...", flush=True)
        ratios += BENCHES[name]()
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__},"
          f" {THREADS} torch thread(s)\n")
    print_table(ratios)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
