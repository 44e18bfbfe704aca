"""[CLS] extraction of every layer (``cache_cls``) vs a plain Hugging Face forward.

Contenders, on the same texts, the same length-sorted batches, tokenisation included:

* ``hf_eager``  — plain HF ``BertModel`` forward with eager attention + the [CLS] head: the
  practical limit (the TransformerLens bridge runs eager attention, so do we);
* ``cache_cls`` — synapse_lens: [CLS] of the embeddings and of every layer output (7 hooks);
* ``tl_bridge`` — TransformerLens's own ``run_with_cache(names_filter=...)`` on the bridge, then
  [CLS] sliced out (what you get without synapse_lens's plain path);
* ``hf_sdpa``   — plain HF with PyTorch's SDPA attention (information only: a different kernel).

Usage: ``python benchmarks/bench_extraction.py [--n 1000] [--reps 3] [--device cuda]``
"""

from __future__ import annotations

import sys
from typing import Any

import common
import numpy as np
import torch

from synapse_lens import ExecOptions


def run(argv: list[str] | None = None) -> dict[str, Any] | None:
    args = common.parser(__doc__.splitlines()[0], n=256, reps=5).parse_args(argv)
    if not common.configure(args):
        return None
    import transformers

    from synapse_lens import classifier_info
    from synapse_lens.activations import cache_cls
    from synapse_lens.models import minilm_path

    texts, _, labels = common.sms(args.n)
    model = common.load_minilm(args, labels)
    info = classifier_info(model)
    names = info.names.layer_outputs()
    tok = model.tokenizer
    head = common.minilm_head(args.seed, len(labels)).to(args.device)
    hf = {impl: transformers.AutoModel.from_pretrained(minilm_path(), attn_implementation=impl)
          .eval().to(args.device) for impl in ("eager", "sdpa")}

    def batches() -> list[Any]:
        """Tokenise once, sort by length, pad per batch: the same batches as cache_cls."""
        ids = tok(list(texts), truncation=True, max_length=args.max_length)["input_ids"]
        order = np.argsort(np.asarray([len(x) for x in ids]), kind="stable")
        return [tok.pad({"input_ids": [ids[i] for i in order[s:s + args.batch_size]]},
                        return_tensors="pt").to(args.device)
                for s in range(0, len(texts), args.batch_size)]

    def plain_hf(impl: str) -> Any:
        def go() -> None:
            with torch.inference_mode():
                for enc in batches():
                    hidden = hf[impl](**enc).last_hidden_state
                    head(hidden[:, 0]).cpu()
        return go

    opts = ExecOptions(batch_size=args.batch_size, max_length=args.max_length, progress=False)

    def ours() -> None:
        cache_cls(model, texts, names=names, options=opts)

    def bridge() -> None:
        with torch.inference_mode():
            for enc in batches():
                _, cache = model.run_with_cache(enc["input_ids"],
                                                attention_mask=enc["attention_mask"],
                                                names_filter=names)
                for name in names:
                    cache[name][:, 0].cpu()

    fns = {"hf_eager": plain_hf("eager"), "cache_cls": ours, "tl_bridge": bridge,
           "hf_sdpa": plain_hf("sdpa")}
    times = common.interleave(fns, args.reps, args.device)
    base = common.median(times["hf_eager"])
    rows = [(name, common.median(t), common.median(t) / base, min(t), max(t))
            for name, t in times.items()]
    # correctness: cache_cls equals the HF hidden states at [CLS]
    acts = cache_cls(model, texts[:64], names=names, options=opts)
    enc = tok(list(texts[:64]), padding=True, truncation=True, max_length=args.max_length,
              return_tensors="pt").to(args.device)
    with torch.inference_mode():
        ref = hf["eager"](**enc, output_hidden_states=True).hidden_states
    diff = max(float((acts[n] - ref[i][:, 0].cpu()).abs().max()) for i, n in enumerate(names))
    print(f"\n## Extraction: [CLS] of {len(names)} hooks, {args.n} SMS texts, MiniLM-L6, "
          f"batch {args.batch_size}, max_length {args.max_length}, {args.reps} rounds")
    print(common.environment(args))
    print(common.markdown(["contender", "median s", "÷ hf_eager", "min s", "max s"], rows))
    print(f"max |cache_cls - HF hidden_states[CLS]| = {diff:.2e}")
    return {"times": times, "ratio": common.median(times["cache_cls"]) / base, "diff": diff}


if __name__ == "__main__":
    run(sys.argv[1:])
