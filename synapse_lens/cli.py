"""``synapse-lens`` command line: a thin layer over the public API."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

logger = logging.getLogger(__name__)

SMOKE_TEXTS = (
    "Congratulations! You won a free prize, call now to claim your cash.",
    "Are we still meeting for lunch tomorrow?",
    "What is the capital city of Australia?",
)


def _smoke(args: argparse.Namespace) -> int:
    import torch

    from synapse_lens.models import classifier_info, load_classifier, minilm_path

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        head = torch.nn.Linear(384, 2)
    model = load_classifier(minilm_path(), head=head, id2label=["ham", "spam"], device=args.device)
    info = classifier_info(model)
    with torch.inference_mode():
        logits = model(list(SMOKE_TEXTS))
    sys.stdout.write(f"{info.architecture}: {info.n_layers} layers, d_model {info.d_model}, "
                     f"classes {list(info.id2label)} (random head, seed {args.seed})\n")
    for text, row in zip(SMOKE_TEXTS, logits.tolist()):
        sys.stdout.write(f"  {[round(v, 4) for v in row]}  {text}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synapse-lens", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    smoke = sub.add_parser("smoke", help="load the offline MiniLM with a random head, print logits")
    smoke.add_argument("--seed", type=int, default=0)
    smoke.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    smoke.set_defaults(func=_smoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``synapse-lens`` console script."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, TypeError, FileNotFoundError, ModuleNotFoundError) as err:
        sys.stderr.write(f"synapse-lens: error: {err}\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
