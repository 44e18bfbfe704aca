"""``synapse-lens`` command line: a thin layer over the public API.

Commands: ``demo`` (the embedded default: a demo classifier on its held-out split), ``run`` (any
supported checkpoint and CSV/TSV/JSONL file), ``compare`` (one report across runs) and
``smoke`` (load the offline MiniLM with a random head and print logits).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: The demo tasks (synapse_lens.demo.datasets.DEMO_TASKS, spelled out: --help imports no torch).
DEMO_TASKS = ("sms-spam", "trec-6", "drug-reviews")
DESCRIPTION = """Neuron-level robustness analysis of Transformer encoder classifiers (SYNAPSE).

commands:
  demo     fine-tune (or reuse) a demo classifier and analyse its held-out split
  run      analyse a local checkpoint on a labelled CSV, TSV or JSONL file
  compare  one report comparing several run directories
  smoke    load the offline MiniLM with a random head and print logits"""
#: Exceptions that mean "this input was refused"; the library raises them with a message that
#: says what was wrong and what is allowed.
USER_ERRORS = (ValueError, TypeError, OSError, ModuleNotFoundError)
OUT_HELP = ("run directory to create: a new path or an empty directory (never the current "
            "directory, the model or the data); an earlier synapse_lens run needs --overwrite")
OVERWRITE_HELP = ("replace an earlier synapse_lens run directory at --out (it is kept until "
                  "the new run is complete); other directories are never touched")
SMOKE_TEXTS = (
    "Congratulations! You won a free prize, call now to claim your cash.",
    "Are we still meeting for lunch tomorrow?",
    "What is the capital city of Australia?",
)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    negative = [v for v in values if v < 0]
    if negative:
        raise argparse.ArgumentTypeError(
            f"expected integers >= 0 (layers count from 0; there is no negative indexing), "
            f"got {','.join(map(str, negative))}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"a value is listed twice in {text!r}")
    return values


def _layers(text: str) -> tuple[int | str, ...]:
    """``0,3,5`` or ``embed,0,3,5`` (``embed``: the embeddings output too)."""
    parts = [v.strip() for v in text.split(",") if v.strip()]
    embed = ("embed",) if "embed" in parts else ()
    numbers = ",".join(v for v in parts if v != "embed")
    if not numbers:
        raise argparse.ArgumentTypeError(
            f"expected at least one encoder layer (e.g. embed,0,5), got {text!r}")
    if parts.count("embed") > 1:
        raise argparse.ArgumentTypeError(f"'embed' is listed twice in {text!r}")
    return (*embed, *_int_list(numbers))


def _names(text: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(","))
    if len(values) < 2 or not all(values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(
            f"expected at least two distinct comma-separated class names, got {text!r}")
    return values


def _positive_list(text: str) -> tuple[int, ...]:
    values = _int_list(text)
    if 0 in values:
        raise argparse.ArgumentTypeError(f"expected unit counts >= 1, got {text!r}")
    return values


def _methods(text: str) -> tuple[str, ...]:
    from synapse_lens.pipeline.config import RANKING_METHODS

    values = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [v for v in values if v not in RANKING_METHODS]
    if not values or unknown or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(
            f"expected distinct methods among {','.join(RANKING_METHODS)}, got {text!r}")
    return values


def _float_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}") from None
    bad = [v for v in values if not math.isfinite(v) or v < 0]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"expected finite numbers >= 0, got {text!r}")
    return values


def _fractions(text: str) -> tuple[float, ...]:
    values = _float_list(text)
    if any(not 0 < v <= 1 for v in values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(
            f"expected distinct fractions of the width in (0, 1], got {text!r}")
    return values


def _positions(text: str) -> tuple[str, ...]:
    from synapse_lens.pipeline.config import POSITIONS

    values = tuple(v.strip() for v in text.split(",") if v.strip())
    if not values or not set(values) <= set(POSITIONS) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(
            f"expected distinct positions among {','.join(POSITIONS)}, got {text!r}")
    return values


def _count(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def _max_examples(text: str) -> int | None:
    value = _count(0)(text)
    if 0 < value < 20:
        raise argparse.ArgumentTypeError(f"expected 0 (all) or at least 20, got {value}")
    return value or None


def _max_classes(text: str) -> int | None:
    value = _count(0)(text)
    if value == 1:
        raise argparse.ArgumentTypeError("expected 0 (no cap) or at least 2, got 1")
    return value or None


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    from synapse_lens.pipeline.config import (
        DEFAULT_EPS,
        DEFAULT_SIGMAS,
        EPS_CAP,
        RANKING_METHODS,
        SIGMA_CAP,
        RunConfig,
    )

    d = RunConfig()
    g = parser.add_argument_group("analysis options")
    g.add_argument("--layers", type=_layers, default=None,
                   help="comma-separated encoder layers to analyse, from 0, plus 'embed' for "
                        "the embeddings output (default: the embeddings and every layer)")
    g.add_argument("--stress-layers", type=_int_list, default=None,
                   help="layers whose rankings drive the ablation curves (default: the middle "
                        "and the last analysed layer)")
    g.add_argument("--rankings", type=_methods, default=d.rankings,
                   help="ranking methods compared, from " + ",".join(RANKING_METHODS)
                        + f" (default: {','.join(d.rankings)})")
    g.add_argument("--no-exact", dest="exact", action="store_false",
                   help="skip the exact single-unit ranking of the last layer")
    g.add_argument("--k", dest="ks", type=_positive_list, default=d.ks,
                   help="unit-set sizes for ablation curves and class-wise effects, each at "
                        "most the model's width (default: --k-fractions of the width)")
    g.add_argument("--k-fractions", type=_fractions, default=d.k_fractions,
                   help="fractions of each hook's width used when --k is not given (default: "
                        f"{','.join(f'{f:g}' for f in d.k_fractions)}; the full width is "
                        "added as the curves' extreme)")
    g.add_argument("--positions", type=_positions, default=d.positions,
                   help="where [CLS]-residual units are ablated: cls, all or both (default: "
                        f"{','.join(d.positions)})")
    g.add_argument("--seeds", dest="n_seeds", type=_count(1), default=d.n_seeds,
                   help=f"random-k draws per condition (default: {d.n_seeds})")
    g.add_argument("--class-k", type=_count(1), default=d.class_k,
                   help="units per set in the noise and weight experiments, and the only "
                        "class-matrix size (default: 5 %% of the width; the class matrix "
                        "then runs over the k grid)")
    g.add_argument("--sigmas", type=_float_list, default=d.sigmas,
                   help="noise levels, used as given (default: "
                        f"{','.join(map(str, DEFAULT_SIGMAS))} doubled up to {SIGMA_CAP:g} "
                        "until top-k noise differs from random-k)")
    g.add_argument("--eps", dest="eps_values", type=_float_list, default=d.eps_values,
                   help="relative weight-perturbation sizes, used as given (default: "
                        f"{','.join(map(str, DEFAULT_EPS))} extended up to {EPS_CAP:g} the "
                        "same way)")
    g.add_argument("--biases", type=_float_list, default=d.biases,
                   help="logit-bias sizes, used as given (default: spanning the measured "
                        "minimal flipping biases up to their 95th percentile)")
    g.add_argument("--max-examples", type=_max_examples, default=d.max_examples,
                   help=f"cap on analysed texts, stratified; 0 = all (default: {d.max_examples})")
    g.add_argument("--max-classes", type=_max_classes, default=d.max_classes,
                   help="cap on the classes given per-class work (per-class rankings, class "
                        "matrix, redirection targets): the most frequent present; 0 = no cap "
                        f"(default: {d.max_classes})")
    g.add_argument("--batch-size", type=_count(1), default=d.batch_size,
                   help=f"texts per forward pass (default: {d.batch_size})")
    g.add_argument("--max-length", type=_count(2), default=None,
                   help=f"tokens kept per text (default: {d.max_length}; demo: the length the "
                        "demo classifier was trained with)")
    g.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="where the model runs (default: cpu)")
    g.add_argument("--seed", type=int, default=d.seed,
                   help=f"seeds every random choice (default: {d.seed})")
    g.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")


def _config(args: argparse.Namespace, *, max_length: int | None = None) -> Any:
    from synapse_lens.pipeline.config import RunConfig

    named = args.layers  # None: everything; else layer numbers and maybe "embed"
    return RunConfig(layers=None if named is None else tuple(v for v in named if v != "embed"),
                     embeddings=None if named is None else "embed" in named,
                     stress_layers=args.stress_layers,
                     rankings=args.rankings, exact=args.exact, ks=args.ks,
                     k_fractions=args.k_fractions, positions=args.positions,
                     n_seeds=args.n_seeds, class_k=args.class_k, sigmas=args.sigmas,
                     eps_values=args.eps_values, biases=args.biases,
                     max_examples=args.max_examples, max_classes=args.max_classes,
                     batch_size=args.batch_size,
                     max_length=max_length or args.max_length or RunConfig().max_length,
                     seed=args.seed)


def _finish(run_dir: str | os.PathLike[str], started: float) -> int:
    sys.stdout.write(f"report: {(Path(run_dir) / 'report.html').resolve()}  "
                     f"({time.perf_counter() - started:.0f} s)\n")
    return 0


def _check_demo_config(config: Any) -> None:
    """The analysis options fit the demo classifiers (fine-tunes of the offline MiniLM)."""
    import transformers

    from synapse_lens.models import minilm_path
    from synapse_lens.models.families import encoder_widths

    base = transformers.AutoConfig.from_pretrained(minilm_path(), local_files_only=True,
                                                   trust_remote_code=False)
    n_layers, d_model, _, _ = encoder_widths(base, "bert")
    config.check(n_layers, d_model)


def _demo(args: argparse.Namespace) -> int:
    """One demo task (``--task``), or all of them and a comparison report across them."""
    from synapse_lens.atomic import check_output_dir
    from synapse_lens.demo.zoo import ZOO_CONFIGS, load_demo_classifier, read_manifest
    from synapse_lens.models.checkpoints import resolve_device
    from synapse_lens.pipeline.run import check_out_dir, run_synapse
    from synapse_lens.report import write_comparison_report
    from synapse_lens.schema import COMPARISON_FILE, COMPARISON_SCHEMA

    started = time.perf_counter()
    tasks = [args.task] if args.task else list(DEMO_TASKS)
    root = Path(args.out or "runs")
    outs = {task: (Path(args.out or f"runs/{task}") if args.task else root / task)
            for task in tasks}
    # each task is analysed at the length its classifier was trained with, unless told
    configs = {task: _config(args, max_length=args.max_length or ZOO_CONFIGS[task].max_length)
               for task in tasks}
    resolve_device(args.device)
    for out in outs.values():  # every output is checked before the first model loads
        check_out_dir(out, overwrite=args.overwrite)
    compare = root / "compare" if len(tasks) > 1 else None
    if compare is not None:
        check_output_dir(compare, marker=COMPARISON_FILE, schema=COMPARISON_SCHEMA,
                         overwrite=args.overwrite, inputs=list(outs.values()))
    for config in configs.values():
        _check_demo_config(config)  # before a cold demo spends minutes fine-tuning
    for task in tasks:
        task_started = time.perf_counter()
        model, splits = load_demo_classifier(task, rebuild=args.rebuild, device=args.device,
                                             progress=not args.quiet)
        extra = {"task": task, "zoo_manifest": read_manifest(task)}
        _finish(run_synapse(model, splits.held_out, outs[task], configs[task],
                            overwrite=args.overwrite, extra_summary=extra,
                            progress=not args.quiet), task_started)
    if compare is not None:
        path = write_comparison_report(list(outs.values()), compare, overwrite=args.overwrite)
        _finish(path.parent, started)
    return 0


def _run(args: argparse.Namespace) -> int:
    from synapse_lens.data import load_texts, model_labels
    from synapse_lens.models import classifier_info, load_classifier, load_head
    from synapse_lens.models.checkpoints import resolve_device
    from synapse_lens.pipeline.run import check_out_dir, run_synapse

    started = time.perf_counter()
    if (args.pooling or args.normalize) and not args.head:
        raise ValueError("--pooling and --normalize describe a head given with --head; a "
                         "checkpoint with its own classifier head decides its own pooling")
    config = _config(args)
    resolve_device(args.device)
    inputs = [args.model, args.data, *([args.head] if args.head else [])]
    check_out_dir(args.out, overwrite=args.overwrite, inputs=inputs)
    head = load_head(args.head) if args.head else None
    if head is not None and args.label_names and len(args.label_names) != head.out_features:
        raise ValueError(f"--label-names names {len(args.label_names)} classes but the head in "
                         f"{args.head!r} has {head.out_features} outputs")
    data = load_texts(args.data, args.text_column, args.label_column, encoding=args.encoding)
    unknown = [n for n in data.label_names if args.label_names and n not in args.label_names]
    if unknown:  # before the model loads
        raise ValueError(f"labels {unknown} of {args.data!r} are not among --label-names "
                         f"{','.join(args.label_names)}")
    model = load_classifier(args.model, head=head, pooling=args.pooling or "cls",
                            normalize=args.normalize, device=args.device,
                            id2label=args.label_names if head is not None else None)
    data = model_labels(data, classifier_info(model).id2label,
                        None if head is not None else args.label_names)
    return _finish(run_synapse(model, data, Path(args.out), config, overwrite=args.overwrite,
                               inputs=inputs, extra_summary={"task": Path(args.data).stem},
                               progress=not args.quiet), started)


def _compare(args: argparse.Namespace) -> int:
    from synapse_lens.report import write_comparison_report

    path = write_comparison_report(args.runs, args.out, overwrite=args.overwrite)
    sys.stdout.write(f"report: {Path(path).resolve()}\n")
    return 0


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


@contextlib.contextmanager
def _transformers_bars(enabled: bool) -> Iterator[None]:
    """transformers' own progress bars (e.g. "Loading weights") on or off for one command."""
    if enabled:
        yield
        return
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def build_parser() -> argparse.ArgumentParser:
    """The ``synapse-lens`` argument parser."""
    from synapse_lens import __version__

    parser = argparse.ArgumentParser(prog="synapse-lens", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"synapse-lens {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="fine-tune (or reuse) a demo classifier and analyse it")
    demo.add_argument("--task", default=None, choices=DEMO_TASKS,
                      help="one demo task: sms-spam (security: spam detection), trec-6 (general "
                           "text: question types) or drug-reviews (healthcare: patient review "
                           "sentiment) (default: all three, and a comparison report)")
    demo.add_argument("--out", default=None,
                      help="with --task: the " + OUT_HELP + " (default: runs/<task>). Without "
                           "--task: the folder that receives one run directory per task and "
                           "compare/ (default: runs); each of those follows the same rules, "
                           "nothing else in the folder is touched")
    demo.add_argument("--rebuild", action="store_true", help="rebuild the cached classifier")
    demo.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    _add_run_options(demo)
    demo.set_defaults(func=_demo)

    run = sub.add_parser("run", help="analyse a local checkpoint on a labelled file")
    run.add_argument("--model", required=True, help="HF checkpoint directory")
    run.add_argument("--data", required=True, help=".csv, .tsv or .jsonl file")
    run.add_argument("--text-column", required=True, help="column (CSV/TSV) or key (JSONL) "
                                                           "holding the texts")
    run.add_argument("--label-column", required=True,
                     help="column or key holding the labels: the model's class names, or "
                          "integer class ids (named through the checkpoint's id2label)")
    run.add_argument("--label-names", type=_names, default=None,
                     help="comma-separated class names in class-id order, as the data file "
                          "spells them, when they differ from the checkpoint's id2label (with "
                          "--head: the names of the head's classes)")
    run.add_argument("--head", default=None,
                     help="for a bare encoder checkpoint (BertModel, ...): a .safetensors file "
                          "holding the classifier's weight [n_classes, d_model] and bias "
                          "[n_classes]")
    run.add_argument("--pooling", choices=["cls", "mean"], default=None,
                     help="what --head reads: the first token (cls) or the mean over tokens "
                          "(default: cls)")
    run.add_argument("--normalize", action="store_true",
                     help="L2-normalise the pooled vector before --head (heads trained on "
                          "sentence-transformers embeddings that end with Normalize)")
    run.add_argument("--encoding", default="utf-8",
                     help="text encoding of the data file (default: utf-8)")
    run.add_argument("--out", required=True, help=OUT_HELP)
    run.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    _add_run_options(run)
    run.set_defaults(func=_run)

    compare = sub.add_parser("compare", help="one report comparing several run directories")
    compare.add_argument("runs", nargs="+", help="run directories")
    compare.add_argument("--out", required=True,
                         help="comparison directory to create (same rules as run --out)")
    compare.add_argument("--overwrite", action="store_true",
                         help="replace an earlier comparison directory at --out")
    compare.set_defaults(func=_compare)

    smoke = sub.add_parser("smoke", help="load the offline MiniLM with a random head, print logits")
    smoke.add_argument("--seed", type=int, default=0,
                       help="seed of the random head (default: 0)")
    smoke.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                       help="where the model runs (default: cpu)")
    smoke.set_defaults(func=_smoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``synapse-lens`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    quiet = getattr(args, "quiet", False)
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        with _transformers_bars(enabled=not quiet):
            return int(args.func(args))
    except USER_ERRORS as err:
        # The user's input was refused (bad file, model directory, option, output path): one
        # line, exit 2. Anything else is a bug in synapse_lens and keeps its traceback.
        message = " ".join(str(err).split()) or type(err).__name__
        sys.stderr.write(f"synapse-lens: error: {message}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("synapse-lens: interrupted; nothing was written\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
