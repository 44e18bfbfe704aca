"""Start-up: ``load_classifier`` against HF's ``from_pretrained``, each in a fresh process.

What a user waits for before the first forward pass: a new Python process imports the library
and loads a fine-tuned MiniLM-L6 classifier from a directory (weights, config, tokenizer). The
HF contender imports ``transformers`` and calls ``AutoModelForSequenceClassification`` /
``AutoTokenizer.from_pretrained``; ours imports ``synapse_lens`` and calls ``load_classifier``
(which also imports TransformerLens and builds the bridge and the plain copy's checks). Wall time
of the whole process, contenders interleaved, medians reported.

The classifier is written once to a temporary directory (the offline MiniLM with a seeded head).

Usage: ``python benchmarks/bench_startup.py [--reps 5]``
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import common

_HF = ("import transformers as t; p = {path!r}; "
       "t.AutoModelForSequenceClassification.from_pretrained(p); "
       "t.AutoTokenizer.from_pretrained(p)")
_OURS = "from synapse_lens import load_classifier; load_classifier({path!r})"


def _classifier_dir(out: Path, seed: int) -> Path:
    """The offline MiniLM encoder with a seeded 2-class head, saved as an HF classifier."""
    import transformers

    from synapse_lens.models import minilm_path

    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        minilm_path(), num_labels=2)
    head = common.minilm_head(seed)
    model.classifier.load_state_dict(head.state_dict())
    model.save_pretrained(out)
    transformers.AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(out)
    return out


def run(argv: list[str] | None = None) -> dict[str, Any] | None:
    args = common.parser(__doc__.splitlines()[0], n=0, reps=5).parse_args(argv)
    if not common.configure(args):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = str(_classifier_dir(Path(tmp) / "classifier", args.seed))
        code = {"hf_from_pretrained": _HF.format(path=path),
                "load_classifier": _OURS.format(path=path)}

        def timed(src: str) -> Any:
            return lambda: subprocess.run([sys.executable, "-c", src], check=True,
                                          capture_output=True)

        fns = {name: timed(src) for name, src in code.items()}
        times = common.interleave(fns, args.reps, args.device)
    base = common.median(times["hf_from_pretrained"])
    rows = common.ratio_rows(times, "hf_from_pretrained")
    print(f"\n## Start-up: a fresh process imports and loads a MiniLM-L6 classifier, "
          f"{args.reps} rounds")
    print(common.environment(args))
    print(common.markdown(["contender", "median s", "÷ HF", "min s", "max s"], rows))
    return {"times": times, "ratio": common.median(times["load_classifier"]) / base}


if __name__ == "__main__":
    run(sys.argv[1:])
