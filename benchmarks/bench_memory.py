"""Peak memory of [CLS] extraction as the number of texts grows.

Each size runs in a fresh process: after loading the model the kernel's peak-RSS counter is reset
(``/proc/self/clear_refs``), ``cache_cls`` caches the embeddings and every layer output, and the
new peak (``VmHWM``) minus the resident size before extraction is the extraction's own peak. The
table compares it with the size of what is kept — ``n · hooks · d_model`` float32 — to show
that memory grows as O(n · layers · d) (per-batch activations are freed batch by batch).

Usage: ``python benchmarks/bench_memory.py [--sizes 250 500 1000 2000]``
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import common


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(args: Any) -> None:
    """Measure one size; print a JSON line."""
    import gc

    from synapse_lens import classifier_info
    from synapse_lens.activations import cache_cls

    texts, _, labels = common.sms(args.n)
    model = common.load_minilm(args, labels)
    names = classifier_info(model).names.layer_outputs()
    cache_cls(model, texts[:8], names=names, progress=False)  # warm the allocator and caches
    gc.collect()
    before = _status("VmRSS")
    reset = True
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        reset = False
    acts = cache_cls(model, texts, names=names, batch_size=args.batch_size,
                     max_length=args.max_length, progress=False)
    peak = _status("VmHWM")
    kept = sum(t.numel() * t.element_size() for t in acts.acts.values())
    print(json.dumps({"n": args.n, "before": before, "peak": peak, "kept": kept,
                      "hooks": len(names), "reset": reset}))


def run(argv: list[str] | None = None) -> dict[str, Any] | None:
    p = common.parser(__doc__.splitlines()[0], n=0, reps=1)
    p.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000, 2000])
    p.add_argument("--child", action="store_true", help=Path(__file__).name + " internal")
    args = p.parse_args(argv)
    if not common.configure(args):
        return None
    if args.child:
        child(args)
        return None
    results = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--child", "--n", str(n), "--device", args.device,
               "--threads", str(args.threads), "--batch-size", str(args.batch_size),
               "--max-length", str(args.max_length), "--seed", str(args.seed)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    mb = 1 / 2**20
    rows = [(r["n"], (r["peak"] - r["before"]) * mb, r["kept"] * mb,
             (r["peak"] - r["before"]) / r["n"] / 1024, r["kept"] / r["n"] / 1024)
            for r in results]
    first, last = results[0], results[-1]
    slope = ((last["peak"] - last["before"]) - (first["peak"] - first["before"])) / (
        last["n"] - first["n"]) if last["n"] != first["n"] else float("nan")
    print(f"\n## Extraction memory: [CLS] of {results[0]['hooks']} hooks, MiniLM-L6 (d 384), "
          f"batch {args.batch_size}, max_length {args.max_length}")
    print(common.environment(args))
    if not all(r["reset"] for r in results):
        print("note: /proc/self/clear_refs not writable; peaks include model loading")
    print(common.markdown(["n texts", "peak increase MiB", "kept activations MiB",
                           "peak KiB / text", "kept KiB / text"], rows))
    print(f"marginal peak per extra text: {slope / 1024:.1f} KiB (kept activations: "
          f"{results[-1]['kept'] / results[-1]['n'] / 1024:.1f} KiB per text = hooks x d x 4 B)")
    return {"results": results, "slope": slope}


if __name__ == "__main__":
    run(sys.argv[1:])
