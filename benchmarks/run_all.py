"""Run every benchmark with its (small) defaults and print the tables (``make bench``).

Usage: ``python benchmarks/run_all.py [--device cuda] [--threads 2] [--only extraction sweep]``

Each benchmark takes its own flags for bigger runs, e.g.
``python benchmarks/bench_extraction.py --n 1000 --reps 5`` (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import sys
import time

import bench_attribution
import bench_extraction
import bench_memory
import bench_scaling
import bench_sweep
import bench_threads
import common

BENCHMARKS = {"extraction": bench_extraction, "sweep": bench_sweep, "memory": bench_memory,
              "scaling": bench_scaling, "threads": bench_threads,
              "attribution": bench_attribution}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    args = p.parse_args(argv)
    if not common.configure(args):
        return 0
    start = time.perf_counter()
    for name in args.only:
        BENCHMARKS[name].run(["--device", args.device, "--threads", str(args.threads)])
    print(f"\nall benchmarks: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
