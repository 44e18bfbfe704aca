"""Peak memory of [CLS] extraction as the number of texts grows.

Each size runs in a fresh process: after loading the model the kernel's peak-RSS counter is reset
(``/proc/self/clear_refs``), ``cache_cls`` caches the embeddings and every layer output, and the
new peak (``VmHWM``) minus the resident size before extraction is the extraction's own peak. The
table compares it with the size of what is kept — ``n · hooks · d_model`` float32 — to show
that memory grows as O(n · layers · d): per-batch activations are freed batch by batch, so the
rest is one batch's transient working set (it grows with the longest batch's length, up to
``max_length``).

Each size is measured twice: with glibc's default allocator settings, whose dynamic mmap threshold
keeps freed per-batch buffers of varying shapes in the heap (RSS then grows with the number of
distinct batch shapes: fragmentation, not live data), and with ``MALLOC_MMAP_THRESHOLD_=65536``,
which returns large freed buffers to the OS so the peak shows live memory.

With ``--device cuda`` the peak is the CUDA allocator's (``torch.cuda.max_memory_allocated``).

Usage: ``python benchmarks/bench_memory.py [--sizes 250 500 1000 2000]``
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import common

from synapse_lens import ExecOptions


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(args: Any) -> None:
    """Measure one size; print a JSON line."""
    import gc

    import torch

    from synapse_lens import classifier_info
    from synapse_lens.activations import cache_cls

    texts, _, labels = common.sms(args.n)
    model = common.load_minilm(args, labels)
    names = classifier_info(model).names.layer_outputs()
    cache_cls(model, texts[:8], names=names,
              options=ExecOptions(progress=False))  # warm the allocator and caches
    gc.collect()
    cuda = args.device == "cuda"  # GPU: the allocator's own peak counter
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated() if cuda else _status("VmRSS")
    reset = True
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        reset = cuda
    opts = ExecOptions(batch_size=args.batch_size, max_length=args.max_length, progress=False)
    acts = cache_cls(model, texts, names=names, options=opts)
    peak = torch.cuda.max_memory_allocated() if cuda else _status("VmHWM")
    kept = sum(t.numel() * t.element_size() for t in acts.acts.values())
    longest = max(len(x) for x in model.tokenizer(list(texts), truncation=True,
                                                   max_length=args.max_length)["input_ids"])
    print(json.dumps({"n": args.n, "before": before, "peak": peak, "kept": kept,
                      "hooks": len(names), "reset": reset, "longest": longest}))


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
    results, tuned = [], []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--child", "--n", str(n), "--device", args.device,
               "--threads", str(args.threads), "--batch-size", str(args.batch_size),
               "--max-length", str(args.max_length), "--seed", str(args.seed)]
        for env, into in (({}, results), ({"MALLOC_MMAP_THRESHOLD_": "65536"}, tuned)):
            out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                                 env={**os.environ, **env}).stdout
            into.append(json.loads(out.strip().splitlines()[-1]))
    mb = 1 / 2**20

    def rise(r: dict[str, Any]) -> float:
        return float(r["peak"] - r["before"])

    rows = [(r["n"], r["longest"], rise(r) * mb, rise(t) * mb, r["kept"] * mb,
             r["kept"] / r["n"] / 1024) for r, t in zip(results, tuned)]
    first, last = tuned[-2] if len(tuned) > 1 else tuned[0], tuned[-1]
    slope = (rise(last) - rise(first)) / (last["n"] - first["n"]) if (
        last["n"] != first["n"]) else float("nan")
    print(f"\n## Extraction memory: [CLS] of {results[0]['hooks']} hooks, MiniLM-L6 (d 384), "
          f"batch {args.batch_size}, max_length {args.max_length}")
    print(common.environment(args))
    if not all(r["reset"] for r in results):
        print("note: /proc/self/clear_refs not writable; peaks include model loading")
    print(common.markdown(["n texts", "longest tokens", "peak rise MiB (glibc default)",
                           "peak rise MiB (mmap threshold 64K)", "kept MiB", "kept KiB / text"],
                          rows))
    print(f"marginal peak per extra text between the two largest sizes (mmap threshold 64K): "
          f"{slope / 1024:.1f} KiB; kept activations: "
          f"{results[-1]['kept'] / results[-1]['n'] / 1024:.1f} KiB per text (hooks x d x 4 B)")
    return {"results": results, "tuned": tuned, "slope": slope}


if __name__ == "__main__":
    run(sys.argv[1:])
