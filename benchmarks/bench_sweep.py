"""A default ablation sweep: synapse_lens's engine vs the naive approach vs the FLOP-minimal cost.

The sweep is ``ablation_curve``'s (zero-ablation of top / random / bottom-k [CLS] units of every
layer output of MiniLM-L6). Contenders, on the same texts and batches, interleaved:

* ``fast``     — ``run_conditions`` as the library runs it: each condition resumes from the
  clean residual cached at its layer, only the later layers and the head re-run;
* ``naive``    — a full forward through the TransformerLens bridge per condition
  (``run_with_hooks`` semantics; ``ExecOptions(engine="full")``);
* ``plain``    — a full forward per condition, on the plain HF copy (no bridge overhead, no
  resuming): separates the two sources of the speed-up;
* ``flop_min`` — the FLOP-minimal execution, written directly against a separately loaded plain
  HF ``BertModel``: one clean forward to cache every layer's output, then per condition the
  ablation as a tensor edit and only the layers after it plus the head — the same arithmetic as
  ``fast`` with no framework at all (no hooks, no bookkeeping, no metric scoring);
* ``hf_hooks`` — what a user writes without an interpretability library: per condition a full
  plain HF forward with a ``torch`` forward hook zeroing the units at [CLS] of the layer;
* ``nnsight``  — the same per-condition loop with nnsight 0.8.1 (``make bench`` installs it):
  one trace per condition and batch, the units set to 0 inside the trace.

Every contender's logits are checked against ``flop_min``'s (hence against each other).

Each round is cut into pieces of ``--piece`` length-sorted batches (default 2: with the default
``--n 128``, two pieces of 64 texts) and the contenders take turns piece by piece
(``common.interleave_pieces``; ``--piece 0``: the whole set per turn): each runs the whole sweep
on the piece's texts as it would on any texts (``fast`` captures the piece's clean states and
scores against its clean run, with the fixed costs of a call), so that a drift in the shared
machine's speed slows every contender alike. The default is thus the sweep of 24 conditions on
64 texts, timed twice per round on two sets of texts.

Usage: ``python benchmarks/bench_sweep.py [--n 128] [--piece 2] [--ks 1 16] [--n-seeds 2]
[--reps 3]``
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import common
import numpy as np
import torch

from synapse_lens import ExecOptions


def _setup(args: Any) -> dict[str, Any]:
    from synapse_lens import classifier_info
    from synapse_lens.analysis.rankings import Ranking
    from synapse_lens.data import TextDataset
    from synapse_lens.experiments.engine import clean_run
    from synapse_lens.experiments.sweeps import ablation_conditions

    texts, labels, names = common.sms(args.n)
    model = common.load_minilm(args, names)
    info = classifier_info(model)
    data = TextDataset(tuple(texts), np.asarray(labels), names)
    lengths = [len(x) for x in model.tokenizer(list(texts), truncation=True,
                                               max_length=args.max_length)["input_ids"]]
    order = np.argsort(np.asarray(lengths), kind="stable")
    size = len(texts) if args.piece <= 0 else args.piece * args.batch_size
    pieces = [order[s:s + size] for s in range(0, len(texts), size)]
    rng = np.random.default_rng(args.seed)
    layers = range(info.n_layers) if args.layers is None else args.layers
    rankings = [Ranking(info.names.resid_post(layer), layer, rng.uniform(size=info.d_model))
                for layer in layers]
    opts = ExecOptions(batch_size=args.batch_size, max_length=args.max_length, progress=False)

    def conditions(subset: Any = data) -> list[Any]:
        return ablation_conditions(model, subset, rankings, args.ks, orders=("top", "random",
                                    "bottom"), n_seeds=args.n_seeds, seed=args.seed, spec=None,
                                    stats=None, options=opts)

    piece_data = [data.subset(ix) for ix in pieces]
    return {"model": model, "info": info, "data": data, "rankings": rankings, "opts": opts,
            "conditions": conditions, "clean": clean_run(model, data, options=opts),
            "order": order, "pieces": pieces, "piece_data": piece_data,
            "piece_clean": [clean_run(model, d, options=opts) for d in piece_data]}


def _plain(args: Any, s: dict[str, Any]) -> dict[str, Any]:
    """A separately loaded plain HF ``BertModel`` (eager attention), the seeded head, the length
    order of the texts and every condition as ``(layer, units)``: what the plain contenders
    share."""
    import transformers

    from synapse_lens.interventions.selection import select_units
    from synapse_lens.models import minilm_path

    hf = transformers.AutoModel.from_pretrained(minilm_path(), attn_implementation="eager")
    hf = hf.eval().to(args.device)
    head = common.minilm_head(args.seed, len(s["data"].label_names)).to(args.device)
    tok = s["model"].tokenizer
    texts = s["data"].texts
    order = s["order"]
    by_hook = {r.hook_name: r for r in s["rankings"]}
    plan = []
    for cond in s["conditions"]():
        c = cond.coords
        units = select_units(by_hook[c["hook_name"]], c["k"], c["order"],
                             0 if c["seed"] is None else c["seed"])
        plan.append((c["layer"], torch.as_tensor(units, device=args.device)))

    def batches(idx: np.ndarray | None = None) -> list[tuple[torch.Tensor, Any]]:
        """The texts ``idx`` (default all; in length order) tokenised once, padded per batch
        (as every contender)."""
        out = []
        selected = order if idx is None else idx
        for start in range(0, len(selected), args.batch_size):
            rows = torch.as_tensor(selected[start:start + args.batch_size])
            out.append((rows, tok([texts[i] for i in rows], padding=True, truncation=True,
                                  max_length=args.max_length, return_tensors="pt")
                        .to(args.device)))
        return out

    return {"hf": hf, "head": head, "n": len(texts), "plan": plan, "batches": batches}


def flop_minimal(p: dict[str, Any]) -> Any:
    """The minimal arithmetic of the sweep on a plain HF BertModel (see the module docstring);
    returns a callable giving every condition's logits."""
    from transformers.masking_utils import create_bidirectional_mask

    hf, head, plan = p["hf"], p["head"], p["plan"]
    n_layers = len(hf.encoder.layer)

    def go(idx: np.ndarray | None = None) -> list[torch.Tensor]:
        out = [torch.empty(p["n"], head.out_features) for _ in plan]
        with torch.inference_mode():
            for rows, enc in p["batches"](idx):
                states = hf(**enc, output_hidden_states=True).hidden_states
                mask = create_bidirectional_mask(config=hf.config, inputs_embeds=states[0],
                                                 attention_mask=enc["attention_mask"])
                for i, (layer, units) in enumerate(plan):
                    h = states[layer + 1].clone()
                    h[:, 0, units] = 0.0
                    for j in range(layer + 1, n_layers):
                        h = hf.encoder.layer[j](h, mask)
                    out[i][rows] = head(h[:, 0]).cpu()
        return out

    return go


def peers(p: dict[str, Any]) -> tuple[Any, Any]:
    """The per-condition loops a user would write with plain torch hooks and with nnsight; each
    returns every condition's logits."""
    import warnings

    from nnsight import NNsight

    hf, head, plan = p["hf"], p["head"], p["plan"]
    n_layers = len(hf.encoder.layer)
    with warnings.catch_warnings():  # nnsight renames HF's `output` submodules (it says so)
        warnings.simplefilter("ignore", UserWarning)
        traced = NNsight(hf)

    def zero(units: torch.Tensor) -> Any:
        def hook(module: Any, inputs: Any, output: Any) -> Any:
            hidden = _hidden(output).clone()
            hidden[:, 0, units] = 0.0
            return (hidden, *output[1:]) if isinstance(output, tuple) else hidden
        return hook

    @torch.inference_mode()
    def hf_hooks(idx: np.ndarray | None = None) -> list[torch.Tensor]:
        out = [torch.empty(p["n"], head.out_features) for _ in plan]
        encoded = p["batches"](idx)
        for i, (layer, units) in enumerate(plan):
            handle = hf.encoder.layer[layer].register_forward_hook(zero(units))
            try:
                for rows, enc in encoded:
                    out[i][rows] = head(hf(**enc).last_hidden_state[:, 0]).cpu()
            finally:
                handle.remove()
        return out

    @torch.inference_mode()
    def nnsight_run(idx: np.ndarray | None = None) -> list[torch.Tensor]:
        out = [torch.empty(p["n"], head.out_features) for _ in plan]
        encoded = p["batches"](idx)
        for i, (layer, units) in enumerate(plan):
            for rows, enc in encoded:
                out[i][rows] = head(_nnsight_ablate(traced, enc, layer, units, n_layers - 1)).cpu()
        return out

    return hf_hooks, nnsight_run


def _nnsight_ablate(traced: Any, enc: Any, layer: int, units: torch.Tensor,
                    last: int) -> torch.Tensor:
    """One nnsight trace: the units of ``layer``'s output zeroed at [CLS]; returns the [CLS] of
    layer ``last`` (a function of its own: nnsight compiles the ``with`` body from this file)."""
    with traced.trace(**enc):
        _hidden(traced.encoder.layer[layer].output)[:, 0, units] = 0.0
        cls = _hidden(traced.encoder.layer[last].output)[:, 0].save()
    return cls


def _hidden(output: Any) -> Any:
    """A layer's hidden states (transformers 5 returns the tensor, 4.x a tuple)."""
    return output[0] if isinstance(output, tuple) else output


def sweep_parser(description: str, reps: int, piece_help: str) -> Any:
    """The flags of the default sweep (``--ks``, ``--n-seeds``, ``--layers``, ``--piece``)
    besides :func:`common.parser`'s."""
    p = common.parser(description, n=128, reps=reps)
    p.add_argument("--ks", type=int, nargs="+", default=[16])
    p.add_argument("--n-seeds", type=int, default=2)
    p.add_argument("--layers", type=int, nargs="+", default=None)
    p.add_argument("--piece", type=int, default=2, metavar="B", help=piece_help)
    return p


def run(argv: list[str] | None = None) -> dict[str, Any] | None:
    p = sweep_parser(__doc__.splitlines()[0], 3,
                     "batches per timed piece: the contenders take turns piece by piece "
                     "(default 2: the default sweep of 64 texts per turn; 0: the whole set)")
    args = p.parse_args(argv)
    if not common.configure(args):
        return None
    from synapse_lens.experiments.engine import run_conditions
    from synapse_lens.metrics import score
    from synapse_lens.runtime.forward import forward

    s = _setup(args)
    model, data, opts, clean = s["model"], s["data"], s["opts"], s["clean"]
    n_conditions = len(s["conditions"]())
    tables: dict[bool, Any] = {}

    pieces, piece_data, piece_clean = s["pieces"], s["piece_data"], s["piece_clean"]

    def engine(fast: bool) -> Any:
        def go(j: int | None = None) -> None:
            subset, subset_clean = (data, clean) if j is None else (piece_data[j], piece_clean[j])
            tables[fast] = run_conditions(
                model, subset, s["conditions"](subset), clean=subset_clean,
                options=dataclasses.replace(opts, engine="fast" if fast else "full"))
        return go

    def plain(j: int) -> None:
        for cond in s["conditions"](piece_data[j]):
            _, logits = forward(model, piece_data[j].texts, [], fwd_hooks=list(cond.hooks()),
                                progress=False, desc="", batch_size=opts.batch_size,
                                max_length=opts.max_length)
            score(logits, piece_clean[j])

    shared = _plain(args, s)
    minimal = flop_minimal(shared)
    hf_hooks, nnsight_fn = peers(shared)
    fns = {"fast": engine(True), "naive": engine(False), "plain": plain,
           "flop_min": lambda j: minimal(pieces[j]), "hf_hooks": lambda j: hf_hooks(pieces[j]),
           "nnsight": lambda j: nnsight_fn(pieces[j])}
    times = common.interleave_pieces(fns, len(pieces), args.reps, args.device)
    engine(True)()  # the tables of the whole set, for the checks below
    engine(False)()
    med = {k: common.median(v) for k, v in times.items()}
    # correctness: the engine's two paths agree; FLOP-minimal logits equal the resumed ones
    diff = float(np.abs(tables[True].value.to_numpy() - tables[False].value.to_numpy()).max())
    from synapse_lens.activations import predict_logits

    reference = minimal()
    conds = s["conditions"]()
    ldiff = max(float((predict_logits(model, data.texts, fwd_hooks=list(conds[i].hooks()),
                                      options=opts) - reference[i]).abs().max())
                for i in range(0, len(conds), max(1, len(conds) // 6)))
    rows = [(name, med[name], med[name] / med["fast"], min(t), max(t),
             common.paired_ratio(times, name, "fast")) for name, t in times.items()]
    print(f"\n## Ablation sweep: {n_conditions} conditions over {len(s['rankings'])} layers, "
          f"{args.n} SMS texts, MiniLM-L6, batch {args.batch_size}, {args.reps} rounds of "
          f"{len(pieces)} pieces")
    print(common.environment(args))
    print(common.markdown(["contender", "median s", "÷ fast", "min s", "max s", "paired ÷ fast"],
                          rows))
    ratios = (med["naive"] / med["fast"], med["fast"] / med["flop_min"],
              med["plain"] / med["fast"])
    print("naive / fast = {:.2f}x;  fast / flop_min = {:.2f}x;  plain / fast = {:.2f}x".format(
        *ratios))
    peer_diff = {name: max(float((a - b).abs().max()) for a, b in zip(fn(), reference))
                 for name, fn in (("hf_hooks", hf_hooks), ("nnsight", nnsight_fn))}
    print(f"max |fast - naive| over table values = {diff:.2e}; max |flop_min - engine| logits "
          f"(sampled conditions) = {ldiff:.2e}; max |peer - flop_min| logits = "
          + ", ".join(f"{k} {v:.2e}" for k, v in peer_diff.items()))
    return {"times": times, "n_conditions": n_conditions, "diff": diff, "ldiff": ldiff,
            "peer_diff": peer_diff, "ratios": {name: med[name] / med["fast"] for name in med},
            "paired_ratios": {name: common.paired_ratio(times, name, "fast") for name in times}}


if __name__ == "__main__":
    run(sys.argv[1:])
