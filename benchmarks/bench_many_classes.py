"""Many classes: a 157-class classifier on data holding a few of them, end to end.

The offline MiniLM-L6 with a seeded 157-class linear head (``load_classifier(head=...)``) over
SMS texts labelled with ``--present`` of the classes (round robin: labels carry no signal, the
point is the shape of the work). ``run_synapse`` runs with the default :class:`RunConfig` (per-class
work capped at ``max_classes=10`` of the classes present; ``--max-classes 0`` lifts the cap); the
output lists the time, how many distinct classes each table mentions and every file's size —
per-class work should follow the classes present, so the tables stay small however many classes
the model has.

Usage: ``python benchmarks/bench_many_classes.py [--classes 157] [--present 30] [--max-classes 10]``
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common
import numpy as np


def run(argv: list[str] | None = None) -> dict[str, Any] | None:
    p = common.parser(__doc__.splitlines()[0], n=600, reps=1)
    p.add_argument("--classes", type=int, default=157)
    p.add_argument("--present", type=int, default=30)
    p.add_argument("--max-classes", type=int, default=10,
                   help="RunConfig.max_classes (default 10, the default; 0: no cap)")
    args = p.parse_args(argv)
    if not common.configure(args):
        return None
    import pandas as pd

    from synapse_lens import RunConfig, load_classifier, run_synapse
    from synapse_lens.data import TextDataset
    from synapse_lens.models import minilm_path

    names = tuple(f"class_{i:03d}" for i in range(args.classes))
    texts, _, _ = common.sms(args.n)
    labels = np.arange(len(texts)) % args.present
    data = TextDataset(tuple(texts), labels, names, name="sms-many-classes")
    model = load_classifier(minilm_path(), head=common.minilm_head(args.seed, args.classes),
                            pooling="cls", id2label=list(names))
    config = RunConfig(seed=args.seed, batch_size=args.batch_size, max_length=args.max_length,
                       max_classes=args.max_classes or None)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        start = time.perf_counter()
        run_synapse(model, data, out, config, progress=False)
        total = time.perf_counter() - start
        rows = []
        for f in sorted(out.rglob("*")):
            if not f.is_file():
                continue
            classes = ""
            if f.suffix == ".csv":
                df = pd.read_csv(f)
                cols = [c for c in ("class", "target", "ablated_class", "source", "to_class")
                        if c in df.columns]
                found = set().union(*(set(df[c].dropna().astype(str)) for c in cols)) if cols \
                    else set()
                classes = str(len(found & set(names)))
            rows.append((f.relative_to(out).as_posix(), f.stat().st_size / 1024, classes))
    total_kib = sum(r[1] for r in rows)
    print(f"\n## {args.classes}-class MiniLM classifier, {args.n} texts of {args.present} classes, "
          f"default RunConfig, max_classes {config.max_classes}")
    print(common.environment(args))
    print(f"run_synapse {total:.0f} s; files {total_kib / 1024:.1f} MiB in all")
    print(common.markdown(["file", "KiB", "model classes mentioned"], rows))
    return {"seconds": total, "files": rows, "total_kib": total_kib}


if __name__ == "__main__":
    run(sys.argv[1:])
