"""How the time of a (fast) ablation sweep scales with conditions and evaluation-set size.

Random-k zero-ablations (k=16) at [CLS] of every layer output of MiniLM-L6, ``s`` seeds per layer
(conditions = 6·s), on the first ``n`` SMS texts. A least-squares fit
``time ≈ c + a·n + b·n·conditions + e·conditions`` separates fixed costs (``c``), the clean pass
that caches the states (``a`` per text), the resumed runs (``b`` per condition and text) and the
per-condition bookkeeping and metric scoring (``e``).

Usage: ``python benchmarks/bench_scaling.py [--sizes 32 64 128] [--seeds 1 2 4] [--reps 1]``
"""

from __future__ import annotations

import sys
import time
from typing import Any

import common
import numpy as np

from synapse_lens import ExecOptions


def run(argv: list[str] | None = None) -> dict[str, Any] | None:
    p = common.parser(__doc__.splitlines()[0], n=0, reps=1)
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 4])
    args = p.parse_args(argv)
    if not common.configure(args):
        return None
    from synapse_lens import classifier_info
    from synapse_lens.analysis.rankings import Ranking
    from synapse_lens.data import TextDataset
    from synapse_lens.experiments.engine import clean_run, run_conditions
    from synapse_lens.experiments.sweeps import ablation_conditions

    all_texts, all_labels, names = common.sms(max(args.sizes))
    model = common.load_minilm(args, names)
    info = classifier_info(model)
    rng = np.random.default_rng(args.seed)
    rankings = [Ranking(info.names.resid_post(layer), layer, rng.uniform(size=info.d_model))
                for layer in range(info.n_layers)]
    opts = ExecOptions(batch_size=args.batch_size, max_length=args.max_length, progress=False)
    cells: dict[tuple[int, int], float] = {}
    warm = TextDataset(tuple(all_texts[:8]), np.asarray(all_labels[:8]), names)
    run_conditions(model, warm, ablation_conditions(model, warm, rankings, [16],
                   orders=("random",), n_seeds=1, options=opts), options=opts)
    for n in args.sizes:
        data = TextDataset(tuple(all_texts[:n]), np.asarray(all_labels[:n]), names)
        clean = clean_run(model, data, options=opts)
        for seeds in args.seeds:
            runs = []
            for _ in range(args.reps):
                conds = ablation_conditions(model, data, rankings, [16], orders=("random",),
                                             n_seeds=seeds, seed=args.seed, options=opts)
                common.sync(args.device)
                start = time.perf_counter()
                run_conditions(model, data, conds, clean=clean, options=opts)
                common.sync(args.device)
                runs.append(time.perf_counter() - start)
            cells[(n, len(conds))] = common.median(runs)
    counts = sorted({c for _, c in cells})
    rows = [(n, *(cells[(n, c)] for c in counts)) for n in args.sizes]
    design = np.array([[1.0, n, n * c, c] for n, c in cells])
    (c0, a, b, e), *_ = np.linalg.lstsq(design, np.array(list(cells.values())), rcond=None)
    print(f"\n## Sweep scaling: seconds for a fast ablation sweep, MiniLM-L6, batch "
          f"{args.batch_size}, max_length {args.max_length}, median of {args.reps}")
    print(common.environment(args))
    print(common.markdown(["n texts", *(f"{c} conditions" for c in counts)], rows))
    print(f"fit: time ≈ {c0:.2f} s + {a * 1000:.2f} ms · n + {b * 1000:.3f} ms · n · conditions"
          f" + {e * 1000:.1f} ms · conditions (fixed; clean caching pass per text; resumed run "
          f"per condition and text; bookkeeping and scoring per condition)")
    return {"cells": cells, "fit": (c0, a, b, e)}


if __name__ == "__main__":
    run(sys.argv[1:])
