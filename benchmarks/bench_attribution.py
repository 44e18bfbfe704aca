"""Attribution ranking of every layer vs caching their [CLS] (``cache_cls``) on the same texts.

Contenders, on the same texts, batches and hooks (the embeddings and every layer output of
MiniLM-L6 with a seeded [CLS] head):

* ``cache_cls``    — one forward per batch, [CLS] of 7 hooks kept (the baseline);
* ``attribution``  — ``attribution_rankings``: one forward and one backward per batch, the
  gradient-times-activation score of every unit of the 7 hooks, global and per class;
* ``exact_last``   — information only: ``exact_ranking`` of the last layer (384 single-unit
  ablations, resumed at the head).

The issue's target is ``attribution ÷ cache_cls ≤ 2``. Correctness first: the attribution scores of
the last layer are compared with the exact ranking (Spearman) on the same texts.

Usage: ``python benchmarks/bench_attribution.py [--n 256] [--reps 3] [--device cuda]``
"""

from __future__ import annotations

import sys
from typing import Any

import common

from synapse_lens import ExecOptions


def run(argv: list[str] | None = None) -> dict[str, Any] | None:
    args = common.parser(__doc__.splitlines()[0], n=256, reps=3).parse_args(argv)
    if not common.configure(args):
        return None
    from scipy.stats import spearmanr

    from synapse_lens import classifier_info, from_lists
    from synapse_lens.activations import cache_cls
    from synapse_lens.analysis.attribution import attribution_rankings
    from synapse_lens.experiments.faithfulness import exact_ranking

    texts, labels, names_ = common.sms(args.n)
    model = common.load_minilm(args, names_)
    info = classifier_info(model)
    names = info.names.layer_outputs()
    data = from_lists(list(texts), labels, label_names=names_)
    opts = ExecOptions(batch_size=args.batch_size, max_length=args.max_length, progress=False)
    last = info.names.resid_post(info.n_layers - 1)

    approx = attribution_rankings(model, data, [last], baseline="mean", per_class=False,
                                  options=opts)[0]
    exact = exact_ranking(model, data, last, baseline="mean", options=opts)
    rho = float(spearmanr(approx.scores, exact.scores)[0])

    fns = {
        "cache_cls": lambda: cache_cls(model, texts, names=names, options=opts),
        "attribution": lambda: attribution_rankings(model, data, names, options=opts),
        "exact_last": lambda: exact_ranking(model, data, last, options=opts),
    }
    times = common.interleave(fns, args.reps, args.device)
    base = common.median(times["cache_cls"])
    rows = common.ratio_rows(times, "cache_cls")
    print(f"\n## Attribution ranking of {len(names)} hooks, {args.n} SMS texts, MiniLM-L6, "
          f"batch {args.batch_size}, max_length {args.max_length}, {args.reps} rounds")
    print(common.environment(args))
    print(common.markdown(["contender", "median s", "÷ cache_cls", "min s", "max s"], rows))
    print(f"Spearman(attribution, exact) at {last}, mean baseline: {rho:.3f}")
    return {"times": times, "ratio": common.median(times["attribution"]) / base, "rho": rho}


if __name__ == "__main__":
    run(sys.argv[1:])
