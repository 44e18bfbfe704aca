"""The [CLS]-only last layer: attending to the layer input through the key and value weights
(what ``cls_row`` does) vs attending to projected keys and values of every position (what it did
before), CPU time.

Two measurements, both in one process:

1. **the layer alone** — MiniLM-L6's last layer on seeded random inputs of ``[batch, pos, 384]``
   (a padded batch: half the rows mask their second half): ``cls_row`` as it runs, ``cls_row``
   given the projected keys and values (``keys_values=``), and the full HF layer, taking turns
   for ``--layer-reps`` rounds; CPU time (``time.process_time``), medians.
2. **in use** — the default sweep (``bench_sweep``'s 24 conditions on ``--n // 2`` texts) and
   ``cache_cls`` of the embeddings and 6 layer outputs (256 texts; 32 with ``--concat``), each
   run with the two forms alternating for ``--reps`` rounds (the old form is obtained by
   wrapping the public ``cls_row`` so that it is given the projections); CPU time, ratio of
   medians and median of per-round ratios. The two forms' sweep tables and [CLS] vectors are
   compared first.

Usage: ``python benchmarks/bench_cls_layer.py [--reps 10]``; long texts:
``python benchmarks/bench_cls_layer.py --reps 4 --concat 40 --max-length 512 --n 32
--batch-size 8``
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import bench_sweep
import common
import numpy as np
import torch


def _cpu(fn: Callable[[], Any]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def _contenders(layer: Any, hidden: torch.Tensor,
                mask: torch.Tensor) -> dict[str, Callable[[], Any]]:
    from synapse_lens.runtime import pruned

    _, key, value = pruned.projections(layer, "bert")
    return {"unprojected": lambda: pruned.cls_row(layer, "bert", hidden, mask),
            "projected": lambda: pruned.cls_row(layer, "bert", hidden, mask,
                                                (key(hidden), value(hidden))),
            "full layer": lambda: layer(hidden, mask)}


def _layer_alone(model: Any, reps: int) -> list[tuple[Any, ...]]:
    from synapse_lens.runtime.plain import plain_model

    pm = plain_model(model)
    if pm is None:
        raise SystemExit("no plain copy of this model (TransformerLens 3.x?)")
    layer = pm.blocks[-1]
    gen = torch.Generator().manual_seed(0)
    rows = []
    for batch, pos in ((32, 40), (32, 64), (8, 512)):
        hidden = torch.randn(batch, pos, 384, generator=gen)
        keep = torch.ones(batch, 1, pos, pos, dtype=torch.bool)
        keep[batch // 2:, :, :, pos // 2:] = False
        fns = _contenders(layer, hidden, keep)
        times: dict[str, list[float]] = {name: [] for name in fns}
        with torch.inference_mode():
            diff = float((fns["unprojected"]() - fns["projected"]()).abs().max())
            for _ in range(reps):
                for name, fn in fns.items():
                    times[name].append(_cpu(fn))
        med = {name: common.median(t) * 1e3 for name, t in times.items()}
        rows.append((f"{batch} × {pos}", med["unprojected"], med["projected"], med["full layer"],
                     med["unprojected"] / med["projected"], med["unprojected"] / med["full layer"],
                     med["projected"] / med["full layer"], f"{diff:.1e}"))
    return rows


def run(argv: list[str] | None = None) -> dict[str, Any] | None:
    p = bench_sweep.sweep_parser(__doc__.splitlines()[0], 10,
                                 "the sweep runs on the first --piece batches of the --n texts")
    p.add_argument("--concat", type=int, default=1, help="SMS joined into each text")
    p.add_argument("--layer-reps", type=int, default=30)
    args = p.parse_args(argv)
    if not common.configure(args):
        return None
    from synapse_lens import classifier_info
    from synapse_lens.activations import cache_cls
    from synapse_lens.experiments.engine import run_conditions
    from synapse_lens.runtime import pruned

    if args.concat > 1:  # long texts: each joins --concat consecutive SMS
        one = common.sms

        def joined(n: int) -> Any:
            texts, labels, names = one(n * args.concat)
            return (tuple(" ".join(texts[i * args.concat:(i + 1) * args.concat])
                          for i in range(n)), labels[::args.concat][:n], names)

        common.sms = joined
    s = bench_sweep._setup(args)
    model, opts = s["model"], s["opts"]
    layer_rows = _layer_alone(model, args.layer_reps)
    names = classifier_info(model).names.layer_outputs()
    texts = common.sms(256 if args.concat == 1 else 32)[0]
    data, clean = s["piece_data"][0], s["piece_clean"][0]
    unprojected = pruned.cls_row

    def projected(layer: Any, shape: Any, hidden: torch.Tensor, mask: Any,
                  keys_values: Any = None) -> torch.Tensor:
        if keys_values is None:
            _, key, value = pruned.projections(layer, shape)
            keys_values = (key(hidden), value(hidden))
        return unprojected(layer, shape, hidden, mask, keys_values)

    forms = {"unprojected": unprojected, "projected": projected}
    work = {"sweep": lambda: run_conditions(model, data, s["conditions"](data), clean=clean,
                                            options=opts),
            "cache_cls": lambda: cache_cls(model, texts, names=names, options=opts)}
    out: dict[str, dict[str, Any]] = {form: {} for form in forms}
    times: dict[tuple[str, str], list[float]] = {(w, f): [] for w in work for f in forms}
    try:
        for form, fn in forms.items():
            pruned.cls_row = fn  # type: ignore[assignment]
            out[form] = {w: job() for w, job in work.items()}
        for r in range(args.reps):
            for form in (forms if r % 2 == 0 else reversed(list(forms))):
                pruned.cls_row = forms[form]  # type: ignore[assignment]
                for w, job in work.items():
                    times[(w, form)].append(_cpu(job))
    finally:
        pruned.cls_row = unprojected  # type: ignore[assignment]
    a, b = out["unprojected"], out["projected"]
    numeric = [c for c in a["sweep"].columns if a["sweep"][c].dtype.kind == "f"]
    table_diff = float(np.nanmax(np.abs(a["sweep"][numeric].to_numpy()
                                        - b["sweep"][numeric].to_numpy())))
    cls_diff = max(float((a["cache_cls"][n] - b["cache_cls"][n]).abs().max()) for n in names)
    use_rows = []
    for w in work:
        new, old = np.asarray(times[(w, "unprojected")]), np.asarray(times[(w, "projected")])
        use_rows.append((w, float(np.median(new)), float(np.median(old)),
                         float(np.median(new) / np.median(old)), float(np.median(new / old))))
    print(f"\n## The [CLS]-only last layer, MiniLM-L6: unprojected vs projected keys and values "
          f"(CPU time)\n{common.environment(args)}")
    print(f"\nThe layer alone, {args.layer_reps} rounds (ms):")
    print(common.markdown(["batch × pos", "unprojected", "projected", "full layer",
                           "unprojected ÷ projected", "unprojected ÷ full", "projected ÷ full",
                           "max |Δ|"], layer_rows))
    print(f"\nIn use, {args.reps} alternating rounds (CPU s; sweep: {len(s['conditions'](data))}"
          f" conditions on {len(data.texts)} texts; cache_cls: {len(texts)} texts, "
          f"max_length {args.max_length}):")
    print(common.markdown(["work", "unprojected", "projected", "ratio of medians",
                           "median of ratios"], use_rows))
    print(f"max |Δ| sweep table values {table_diff:.1e}; [CLS] vectors {cls_diff:.1e}")
    return {"layer": layer_rows, "use": use_rows, "table_diff": table_diff,
            "cls_diff": cls_diff}


if __name__ == "__main__":
    run(sys.argv[1:])
