"""Peak memory of [CLS] extraction as the number of texts grows, against a plain HF forward.

Each size runs in a fresh process: after loading the model the kernel's peak-RSS counter is reset
(``/proc/self/clear_refs``), ``cache_cls`` caches the embeddings and every layer output, and the
new peak (``VmHWM``) minus the resident size before extraction is the extraction's own peak. The
baseline is the same measurement of a plain HF forward (``AutoModel``, the same length-sorted
batches, the [CLS] rows of the last layer kept), each in its own process. The
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

    import numpy as np
    import torch

    from synapse_lens import classifier_info
    from synapse_lens.activations import cache_cls

    texts, _, labels = common.sms(args.n)
    model = common.load_minilm(args, labels)
    names = classifier_info(model).names.layer_outputs()
    opts = ExecOptions(batch_size=args.batch_size, max_length=args.max_length, progress=False)
    if args.what == "hf":
        import transformers

        from synapse_lens.models import minilm_path

        hf = transformers.AutoModel.from_pretrained(minilm_path(), attn_implementation="eager")
        hf = hf.eval().to(args.device)
        tok = model.tokenizer

        def extract(some: Any) -> list[Any]:
            ids = tok(list(some), truncation=True, max_length=args.max_length)["input_ids"]
            order = np.argsort(np.asarray([len(x) for x in ids]), kind="stable")
            kept = []
            with torch.inference_mode():
                for s in range(0, len(some), args.batch_size):
                    enc = tok.pad({"input_ids": [ids[i] for i in order[s:s + args.batch_size]]},
                                  return_tensors="pt").to(args.device)
                    kept.append(hf(**enc).last_hidden_state[:, 0].cpu().clone())
            return kept
    else:
        def extract(some: Any) -> Any:
            return cache_cls(model, some, names=names, options=opts)
    extract(texts[:8])  # warm the allocator and caches
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
    acts = extract(texts)
    peak = torch.cuda.max_memory_allocated() if cuda else _status("VmHWM")
    kept = (sum(t.numel() * t.element_size() for t in acts.acts.values())
            if args.what == "cache_cls" else sum(t.numel() * t.element_size() for t in acts))
    longest = max(len(x) for x in model.tokenizer(list(texts), truncation=True,
                                                   max_length=args.max_length)["input_ids"])
    print(json.dumps({"n": args.n, "before": before, "peak": peak, "kept": kept,
                      "hooks": len(names), "reset": reset, "longest": longest,
                      "what": args.what}))


def run(argv: list[str] | None = None) -> dict[str, Any] | None:
    p = common.parser(__doc__.splitlines()[0], n=0, reps=1)
    p.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000, 2000])
    p.add_argument("--child", action="store_true", help=Path(__file__).name + " internal")
    p.add_argument("--what", choices=("cache_cls", "hf"), default="cache_cls",
                   help=Path(__file__).name + " internal")
    args = p.parse_args(argv)
    if not common.configure(args):
        return None
    if args.child:
        child(args)
        return None
    results, tuned, hf = [], [], []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--child", "--n", str(n), "--device", args.device,
               "--threads", str(args.threads), "--batch-size", str(args.batch_size),
               "--max-length", str(args.max_length), "--seed", str(args.seed)]
        for env, what, into in (({}, "cache_cls", results),
                                ({"MALLOC_MMAP_THRESHOLD_": "65536"}, "cache_cls", tuned),
                                ({}, "hf", hf)):
            out = subprocess.run([*cmd, "--what", what], capture_output=True, text=True,
                                 check=True, env={**os.environ, **env}).stdout
            into.append(json.loads(out.strip().splitlines()[-1]))
    mb = 1 / 2**20

    def rise(r: dict[str, Any]) -> float:
        return float(r["peak"] - r["before"])

    rows = [(r["n"], r["longest"], rise(h) * mb, rise(r) * mb, rise(r) / max(rise(h), 1.0),
             rise(t) * mb, r["kept"] * mb, r["kept"] / r["n"] / 1024)
            for r, t, h in zip(results, tuned, hf)]
    first, last = tuned[-2] if len(tuned) > 1 else tuned[0], tuned[-1]
    slope = (rise(last) - rise(first)) / (last["n"] - first["n"]) if (
        last["n"] != first["n"]) else float("nan")
    print(f"\n## Extraction memory: [CLS] of {results[0]['hooks']} hooks, MiniLM-L6 (d 384), "
          f"batch {args.batch_size}, max_length {args.max_length}")
    print(common.environment(args))
    if not all(r["reset"] for r in results):
        print("note: /proc/self/clear_refs not writable; peaks include model loading")
    print(common.markdown(["n texts", "longest tokens", "HF forward: peak rise MiB",
                           "cache_cls: peak rise MiB", "÷ HF", "cache_cls, mmap threshold 64K",
                           "kept MiB", "kept KiB / text"], rows))
    print(f"marginal peak per extra text between the two largest sizes (mmap threshold 64K): "
          f"{slope / 1024:.1f} KiB; kept activations: "
          f"{results[-1]['kept'] / results[-1]['n'] / 1024:.1f} KiB per text (hooks x d x 4 B)")
    return {"results": results, "tuned": tuned, "hf": hf, "slope": slope,
            "cache_cls_vs_hf": rise(results[-1]) / max(rise(hf[-1]), 1.0)}


if __name__ == "__main__":
    run(sys.argv[1:])
