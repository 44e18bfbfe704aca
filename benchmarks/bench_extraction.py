"""[CLS] extraction of every layer (``cache_cls``) vs a plain Hugging Face forward.

Contenders, on the same texts, the same length-sorted batches, tokenisation included:

* ``hf_eager``  — plain HF ``BertModel`` forward with eager attention + the [CLS] head (the
  attention the TransformerLens bridge runs, so that its attention hooks fire);
* ``cache_cls`` — synapse_lens: [CLS] of the embeddings and of every layer output (7 hooks);
* ``tl_bridge`` — TransformerLens's own ``run_with_cache(names_filter=...)`` on the bridge, then
  [CLS] sliced out (what you get without synapse_lens's plain path);
* ``hf_hooks``  — what a user writes without an interpretability library (NeuroX-style): plain
  HF eager forward with ``torch`` forward hooks on the embeddings and every layer keeping [CLS];
* ``nnsight``   — nnsight 0.8.1 (``make bench`` installs it) tracing the same plain HF model and
  saving the [CLS] slice of the embeddings and every layer;
* ``hf_sdpa``   — plain HF with PyTorch's SDPA attention, HF's default: the kernel synapse_lens's
  plain path runs since December 2026, so this is the like-for-like baseline (both printed).

Every contender's [CLS] vectors are checked against ``cache_cls`` before timing. Besides wall
time, each contender's CPU time in the kernel (``sys``, from ``getrusage``) is reported: eager
attention's ``[batch, heads, pos, pos]`` buffers make it large for long texts.

``--concat K`` joins K consecutive SMS into each text (long inputs: with ``--max-length 512``,
``--concat 40`` fills all 512 tokens).

Each round is cut into pieces of ``--piece`` length-sorted batches (default 4: 128 texts) and the
contenders take turns piece by piece (:func:`common.interleave_pieces`; ``--piece 0``: the whole
set per turn), so that a drift in the shared machine's speed slows every contender alike. Each
contender handles a piece as it would the whole set: ``cache_cls`` is called on the piece's
texts (which it sorts into the same batches), the others tokenise and pad the same batches.
Besides the ratio of the median round times, the median of the per-round ratios is printed.

Usage: ``python benchmarks/bench_extraction.py [--n 1000] [--reps 3] [--device cuda]``;
long texts: ``python benchmarks/bench_extraction.py --n 64 --concat 40 --max-length 512``
"""

from __future__ import annotations

import sys
from typing import Any

import common
import numpy as np
import torch

from synapse_lens import ExecOptions


def run(argv: list[str] | None = None) -> dict[str, Any] | None:
    p = common.parser(__doc__.splitlines()[0], n=256, reps=5)
    p.add_argument("--concat", type=int, default=1,
                   help="SMS joined into each text (default 1; 40 gives 512-token texts)")
    p.add_argument("--piece", type=int, default=4, metavar="B",
                   help="batches per timed piece: the contenders take turns piece by piece "
                        "(default 4; 0: the whole set per turn)")
    args = p.parse_args(argv)
    if not common.configure(args):
        return None
    import transformers

    from synapse_lens import classifier_info
    from synapse_lens.activations import cache_cls
    from synapse_lens.models import minilm_path

    texts, _, labels = common.sms(args.n * args.concat)
    texts = tuple(" ".join(texts[i * args.concat:(i + 1) * args.concat]) for i in range(args.n))
    model = common.load_minilm(args, labels)
    info = classifier_info(model)
    names = info.names.layer_outputs()
    tok = model.tokenizer
    head = common.minilm_head(args.seed, len(labels)).to(args.device)
    hf = {impl: transformers.AutoModel.from_pretrained(minilm_path(), attn_implementation=impl)
          .eval().to(args.device) for impl in ("eager", "sdpa")}

    lengths = [len(x) for x in tok(list(texts), truncation=True,
                                   max_length=args.max_length)["input_ids"]]
    order = np.argsort(np.asarray(lengths), kind="stable")
    size = len(texts) if args.piece <= 0 else args.piece * args.batch_size
    pieces = [order[s:s + size] for s in range(0, len(texts), size)]

    def batches(idx: np.ndarray = order) -> list[Any]:
        """Tokenise the texts ``idx`` (in length order) once, pad per batch: the batches
        cache_cls forms for them."""
        ids = tok([texts[i] for i in idx], truncation=True, max_length=args.max_length)["input_ids"]
        within = np.argsort(np.asarray([len(x) for x in ids]), kind="stable")
        return [tok.pad({"input_ids": [ids[i] for i in within[s:s + args.batch_size]]},
                        return_tensors="pt").to(args.device)
                for s in range(0, len(idx), args.batch_size)]

    def plain_hf(impl: str) -> Any:
        def go(idx: np.ndarray) -> None:
            with torch.inference_mode():
                for enc in batches(idx):
                    hidden = hf[impl](**enc).last_hidden_state
                    head(hidden[:, 0]).cpu()
        return go

    opts = ExecOptions(batch_size=args.batch_size, max_length=args.max_length, progress=False)

    def ours(idx: np.ndarray) -> None:
        cache_cls(model, [texts[i] for i in idx], names=names, options=opts)

    def bridge(idx: np.ndarray) -> None:
        with torch.inference_mode():
            for enc in batches(idx):
                _, cache = model.run_with_cache(enc["input_ids"],
                                                attention_mask=enc["attention_mask"],
                                                names_filter=names)
                for name in names:
                    cache[name][:, 0].cpu()

    hf_hooks, nnsight_fn = peers(hf["eager"], head, batches)
    fns = {"hf_eager": plain_hf("eager"), "cache_cls": ours, "tl_bridge": bridge,
           "hf_hooks": hf_hooks, "nnsight": nnsight_fn, "hf_sdpa": plain_hf("sdpa")}
    ours_acts = cache_cls(model, texts, names=names, options=opts)
    peer_diff = {name: max(float((torch.cat(parts)[np.argsort(order, kind="stable")]
                                  - ours_acts[n]).abs().max())
                           for parts, n in zip(fn(), names))
                 for name, fn in (("hf_hooks", hf_hooks), ("nnsight", nnsight_fn))}
    sys_s: dict[str, list[float]] = {name: [] for name in fns}
    timed = {name: _with_sys_time(lambda i, fn=fn: fn(pieces[i]), sys_s[name])
             for name, fn in fns.items()}
    times = common.interleave_pieces(timed, len(pieces), args.reps, args.device)
    base = common.median(times["hf_eager"])
    rows = [(*row, common.paired_ratio(times, row[0], "hf_eager"),
             common.median(times[row[0]]) / common.median(times["hf_sdpa"]),
             sum(sys_s[row[0]][1:]) / args.reps)  # [0]: the warm-up piece
            for row in common.ratio_rows(times, "hf_eager")]
    # correctness: cache_cls equals the HF hidden states at [CLS]
    acts = cache_cls(model, texts[:64], names=names, options=opts)
    enc = tok(list(texts[:64]), padding=True, truncation=True, max_length=args.max_length,
              return_tensors="pt").to(args.device)
    with torch.inference_mode():
        ref = hf["eager"](**enc, output_hidden_states=True).hidden_states
    diff = max(float((acts[n] - ref[i][:, 0].cpu()).abs().max()) for i, n in enumerate(names))
    joined = f" (each {args.concat} SMS joined)" if args.concat > 1 else ""
    print(f"\n## Extraction: [CLS] of {len(names)} hooks, {args.n} SMS texts{joined}, MiniLM-L6, "
          f"batch {args.batch_size}, max_length {args.max_length}, {args.reps} rounds of "
          f"{len(pieces)} pieces")
    print(common.environment(args))
    print(common.markdown(["contender", "median s", "÷ hf_eager", "min s", "max s",
                           "paired ÷ hf_eager", "÷ hf_sdpa", "sys CPU s"], rows))
    print(f"max |cache_cls - HF hidden_states[CLS]| = {diff:.2e}; max |peer - cache_cls| = "
          + ", ".join(f"{k} {v:.2e}" for k, v in peer_diff.items()))
    return {"times": times, "ratio": common.median(times["cache_cls"]) / base, "diff": diff,
            "peer_diff": peer_diff,
            "ratios": {name: common.median(t) / base for name, t in times.items()},
            "paired_ratios": {name: common.paired_ratio(times, name, "hf_eager")
                              for name in times},
            "sys_s": {name: common.median(v[1:]) for name, v in sys_s.items()}}


def _with_sys_time(fn: Any, out: list[float]) -> Any:
    """``fn``, appending the CPU seconds the process spent in the kernel during each call."""
    import resource

    def timed(*args: Any) -> Any:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
        result = fn(*args)
        out.append(resource.getrusage(resource.RUSAGE_SELF).ru_stime - before)
        return result

    return timed


def peers(hf: Any, head: Any, batches: Any) -> tuple[Any, Any]:
    """The two tools a user would pick instead, on the same plain HF model and batches: each
    returns, per hook (embeddings, then every layer output), the [CLS] rows batch by batch (of
    the texts ``idx``, default all)."""
    import warnings

    from nnsight import NNsight

    layers = list(hf.encoder.layer)
    with warnings.catch_warnings():  # nnsight renames HF's `output` submodules (it says so)
        warnings.simplefilter("ignore", UserWarning)
        traced = NNsight(hf)

    @torch.inference_mode()
    def hf_hooks(idx: Any = None) -> list[list[torch.Tensor]]:
        kept: list[list[torch.Tensor]] = [[] for _ in range(len(layers) + 1)]

        def keep(i: int) -> Any:
            def hook(module: Any, inputs: Any, output: Any) -> None:
                hidden = output[0] if isinstance(output, tuple) else output
                kept[i].append(hidden[:, 0].cpu())
            return hook

        handles = [m.register_forward_hook(keep(i))
                   for i, m in enumerate([hf.embeddings, *layers])]
        try:
            for enc in batches() if idx is None else batches(idx):
                head(hf(**enc).last_hidden_state[:, 0]).cpu()
        finally:
            for h in handles:
                h.remove()
        return kept

    @torch.inference_mode()
    def nnsight_run(idx: Any = None) -> list[list[torch.Tensor]]:
        kept: list[list[torch.Tensor]] = [[] for _ in range(len(layers) + 1)]
        for enc in batches() if idx is None else batches(idx):
            saved = _nnsight_trace(traced, enc, len(layers))
            head(saved[-1]).cpu()
            for i, s in enumerate(saved):
                kept[i].append(s.cpu())
        return kept

    return hf_hooks, nnsight_run


def _nnsight_trace(traced: Any, enc: Any, n_layers: int) -> list[torch.Tensor]:
    """One nnsight trace saving [CLS] of the embeddings and every layer output (a function of
    its own: nnsight compiles the body of the ``with`` block from this file's source)."""
    saved = []
    with traced.trace(**enc):
        saved.append(traced.embeddings.output[:, 0].save())
        for i in range(n_layers):
            saved.append(_hidden(traced.encoder.layer[i].output)[:, 0].save())
    return saved


def _hidden(output: Any) -> Any:
    """A layer's hidden states (transformers 5 returns the tensor, 4.x a tuple)."""
    return output[0] if isinstance(output, tuple) else output


if __name__ == "__main__":
    run(sys.argv[1:])
