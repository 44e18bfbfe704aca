"""Run every benchmark with its (small) defaults and print the tables (``make bench``).

Usage: ``python benchmarks/run_all.py [--device cuda] [--threads 2] [--only extraction sweep]
[--json FILE]``

``--json FILE`` writes the headline ratios (medians of interleaved rounds) of the benchmarks that
ran, with the load average before and after and every contender's ratio::

    {"extraction_vs_hf": ..., "naive_vs_fast": ..., "fast_vs_flop_min": ...,
     "cache_cls_memory_vs_hf": ..., "load_classifier_vs_hf": ..., "load_average": ...}

Each benchmark takes its own flags for bigger runs, e.g.
``python benchmarks/bench_extraction.py --n 1000 --reps 5`` (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import bench_attribution
import bench_extraction
import bench_memory
import bench_scaling
import bench_startup
import bench_sweep
import bench_threads
import common

BENCHMARKS = {"extraction": bench_extraction, "sweep": bench_sweep, "memory": bench_memory,
              "scaling": bench_scaling, "threads": bench_threads,
              "attribution": bench_attribution, "startup": bench_startup}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="write the headline ratios and the load average to FILE")
    p.add_argument("--extraction-n", type=int, default=None, metavar="N",
                   help="texts of the extraction benchmark (default: its own, 256)")
    args = p.parse_args(argv)
    if not common.configure(args):
        return 0
    load_before = os.getloadavg()
    start = time.perf_counter()
    results: dict[str, Any] = {}
    for name in args.only:
        extra = (["--n", str(args.extraction_n)]
                 if args.extraction_n is not None and name == "extraction" else [])
        results[name] = BENCHMARKS[name].run(["--device", args.device, "--threads",
                                              str(args.threads), *extra])
    print(f"\nall benchmarks: {time.perf_counter() - start:.0f} s")
    if args.json is not None:
        summary = headline(results)
        summary.update(load_average={"before": list(load_before),
                                     "after": list(os.getloadavg())},
                       machine=f"{platform.machine()}, {os.cpu_count()} cores, device "
                               f"{args.device}, {args.threads} torch threads",
                       seconds=round(time.perf_counter() - start, 1))
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """The ratios the performance issue tracks, from the benchmarks' results (None = not run)."""
    out: dict[str, Any] = {}
    ext, sweep = results.get("extraction"), results.get("sweep")
    if ext:
        out["extraction_vs_hf"] = ext["ratios"]["cache_cls"]
        out["extraction_ratios_vs_hf"] = ext["ratios"]
        out["extraction_max_abs_diff"] = {"hf": ext["diff"], **ext["peer_diff"]}
    if sweep:
        out["naive_vs_fast"] = sweep["ratios"]["naive"]
        out["fast_vs_flop_min"] = 1.0 / sweep["ratios"]["flop_min"]
        out["sweep_ratios_vs_fast"] = sweep["ratios"]
        out["sweep_conditions"] = sweep["n_conditions"]
        out["sweep_max_abs_diff"] = {"naive": sweep["diff"], "flop_min": sweep["ldiff"],
                                     **sweep["peer_diff"]}
    if results.get("memory"):
        out["cache_cls_memory_vs_hf"] = results["memory"]["cache_cls_vs_hf"]
    if results.get("startup"):
        out["load_classifier_vs_hf"] = results["startup"]["ratio"]
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
