"""Demo classifiers ("the zoo"): all-MiniLM-L6-v2 fine-tuned on the offline demo datasets.

No fine-tuned encoder classifier can be downloaded offline, so synapse_lens builds its own. The
fine-tuning is a *fixture builder*, not part of the SYNAPSE method: a short, seeded, full
fine-tune on a stratified training split, evaluated on a held-out split that training never
sees. Builds are cached under ``$SYNAPSE_LENS_CACHE`` (default: ``$XDG_CACHE_HOME/synapse_lens``,
i.e. ``~/.cache/synapse_lens``) in ``zoo/<task>/`` with a ``manifest.json``, written atomically,
and reused while the manifest matches the task, settings, data and base model.

CPU builds are bit-for-bit reproducible for a given torch thread count (recorded in the
manifest; other thread counts differ by ~1e-5). On a machine whose cores are busy with other
work, ``torch.set_num_threads(1)`` builds several times faster than the default (measured
here: 84 s vs 528 s for ``sms-spam`` on 2 shared cores).

Example:
    >>> model, splits = load_demo_classifier("sms-spam")  # doctest: +SKIP
    >>> model(list(splits.held_out.texts[:4])).shape  # doctest: +SKIP
    torch.Size([4, 2])
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from synapse_lens.atomic import atomic_directory
from synapse_lens.demo.datasets import (
    DEMO_TASKS,
    DemoSplits,
    DemoTask,
    demo_dataset,
    demo_task,
    fixed_splits,
    make_splits,
)
from synapse_lens.demo.train import ZooConfig

__all__ = [
    "DEMO_TASKS",
    "ZOO_CONFIGS",
    "DemoSplits",
    "DemoTask",
    "ZooConfig",
    "build_demo_classifier",
    "cache_root",
    "demo_dataset",
    "demo_splits",
    "load_demo_classifier",
    "read_manifest",
    "zoo_dir",
]

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
#: Version of the cache layout and manifest keys (2: dataset fingerprints are
#: ``TextDataset.fingerprint``); a cached build of another format is rebuilt.
FORMAT = 2
BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


#: The registered build settings of each demo task (their builds live in ``zoo/<task>``).
#: Measured (torch 2.13 CPU, seed 0): sms-spam 98.7 % held-out accuracy (1,290 texts) from
#: 53 CPU-seconds of training; trec-6 94.5 % (1,345 questions) from 116 CPU-seconds;
#: drug-reviews (reviews are long: 128 tokens, smaller batches) see docs/redirection.md and the
#: README for its held-out accuracy and macro-F1 against the majority class.
ZOO_CONFIGS: Mapping[str, ZooConfig] = MappingProxyType({
    "sms-spam": ZooConfig(max_train=2000, steps=60),
    "trec-6": ZooConfig(max_train=4000, steps=250),
    "drug-reviews": ZooConfig(max_train=2000, steps=150, batch_size=16, max_length=128,
                              lr=5e-5),
})


def _config(task: str, config: ZooConfig | None) -> ZooConfig:
    cfg = ZOO_CONFIGS[demo_task(task).name] if config is None else config
    if not isinstance(cfg, ZooConfig):
        raise TypeError(f"config must be a ZooConfig or None, got {type(cfg).__name__}")
    return cfg


def demo_splits(task: str, config: ZooConfig | None = None) -> DemoSplits:
    """The train / held-out split a demo classifier is (or would be) built with.

    Args:
        task: a name in :data:`DEMO_TASKS`.
        config: the build settings; default: the task's registered config.

    Raises:
        ValueError: unknown task.

    Example:
        >>> splits = demo_splits("sms-spam")  # doctest: +SKIP
        >>> len(splits.train), len(splits.held_out)  # doctest: +SKIP
        (2000, 1290)
    """
    cfg = _config(task, config)
    split = demo_task(task).split
    if split is not None:  # the data ships its own held-out file
        return fixed_splits(task, *split(), max_train=cfg.max_train, seed=cfg.seed)
    return make_splits(task, demo_dataset(task), held_out=cfg.held_out,
                       max_train=cfg.max_train, seed=cfg.seed)


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The synapse_lens cache directory: ``cache_dir`` if given, else ``$SYNAPSE_LENS_CACHE``,
    else ``$XDG_CACHE_HOME/synapse_lens`` (``~/.cache/synapse_lens``)."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("SYNAPSE_LENS_CACHE"):
        return Path(os.environ["SYNAPSE_LENS_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "synapse_lens"


def zoo_dir(
    task: str, cache_dir: str | os.PathLike[str] | None = None, *, config: ZooConfig | None = None
) -> Path:
    """The checkpoint directory of a demo classifier (it may not exist yet).

    The task's registered settings build into ``zoo/<task>``; other settings into
    ``zoo/<task>-<12 hex digits of their hash>``, so that a custom or quick build never evicts
    the default one.

    Args:
        task: a name in :data:`DEMO_TASKS`.
        cache_dir: cache root (see :func:`cache_root`).
        config: the build settings; default: the task's registered config.

    Raises:
        ValueError: unknown task.

    Example:
        >>> zoo_dir("sms-spam", "/tmp/cache")
        PosixPath('/tmp/cache/zoo/sms-spam')
    """
    name, cfg = demo_task(task).name, _config(task, config)
    if cfg != ZOO_CONFIGS[name]:
        digest = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode()).hexdigest()
        name = f"{name}-{digest[:12]}"
    return cache_root(cache_dir) / "zoo" / name


def read_manifest(
    task: str, cache_dir: str | os.PathLike[str] | None = None, *, config: ZooConfig | None = None
) -> dict | None:
    """The ``manifest.json`` of a cached demo classifier (see :func:`zoo_dir`), or ``None``.

    Example:
        >>> read_manifest("sms-spam")["held_out_accuracy"]  # doctest: +SKIP
        0.986822
    """
    path = zoo_dir(task, cache_dir, config=config) / MANIFEST
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _cache_key(task: str, config: ZooConfig, splits: DemoSplits) -> dict[str, Any]:
    """The manifest entries that must match for a cached build to be reused."""
    from synapse_lens.demo.train import base_model_sha256

    return {
        "format": FORMAT,
        "task": task,
        "base_model": BASE_MODEL,
        "base_model_sha256": base_model_sha256(),
        "config": config.to_dict(),
        "label_names": list(splits.label_names),
        "train_fingerprint": splits.train.fingerprint,
        "held_out_fingerprint": splits.held_out.fingerprint,
    }


def _stale_reason(target: Path, manifest: dict | None, key: Mapping[str, Any]) -> str | None:
    if manifest is None:
        return "no manifest"
    for name, value in key.items():
        if manifest.get(name) != value:
            return f"manifest {name} differs"
    if not (target / "config.json").is_file() or not (target / "model.safetensors").is_file():
        return "checkpoint files missing"
    return None


def _write_manifest(directory: Path, manifest: Mapping[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (directory / MANIFEST).write_text(text, encoding="utf-8")


def build_demo_classifier(
    task: str = "sms-spam",
    *,
    config: ZooConfig | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    device: str = "cpu",
) -> Path:
    """Fine-tune a demo classifier now (ignoring any cache) and store it in :func:`zoo_dir`.

    The build happens in a temporary directory next to the target and is moved into place only
    when complete, so an error leaves no partial ``zoo/<task>`` (an older build stays intact).

    Args:
        task: a name in :data:`DEMO_TASKS`.
        config: build settings; default: the task's registered config.
        cache_dir: cache root (see :func:`cache_root`).
        progress: show tqdm progress bars.
        device: ``"cpu"`` or ``"cuda"`` (CPU builds are bit-for-bit reproducible).

    Returns:
        The checkpoint directory (``save_pretrained`` layout with tokenizer and manifest).

    Raises:
        ValueError: unknown task, bad config, bad device.

    Example:
        >>> path = build_demo_classifier("sms-spam", cache_dir=tmp_path)  # doctest: +SKIP
    """
    from synapse_lens.demo.train import finetune, predict, run_versions
    from synapse_lens.models.checkpoints import resolve_device

    resolve_device(device)
    cfg = _config(task, config)
    start, start_cpu = time.perf_counter(), time.process_time()
    splits = demo_splits(task, cfg)
    key = _cache_key(task, cfg, splits)
    target = zoo_dir(task, cache_dir, config=cfg)
    with atomic_directory(target) as tmp:
        logger.info("building demo classifier %r in %s", task, tmp)
        model, tokenizer, train_loss = finetune(splits, cfg, device=device, progress=progress)
        predicted = predict(model, tokenizer, splits.held_out.texts, cfg, device=device,
                            progress=progress)
        from sklearn.metrics import f1_score

        accuracy = float((predicted == splits.held_out.labels).mean())
        macro_f1 = float(f1_score(splits.held_out.labels, predicted, average="macro"))
        majority = float(np.bincount(splits.held_out.labels).max() / len(predicted))
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        n_train, n_held_out = len(splits.train), len(splits.held_out)
        manifest = {
            **key, "seed": cfg.seed, "steps": cfg.steps,
            "epochs": round(cfg.steps * cfg.batch_size / n_train, 3),
            "n_train": n_train, "n_held_out": n_held_out,
            "held_out_accuracy": round(accuracy, 6),
            "held_out_macro_f1": round(macro_f1, 6),
            "held_out_majority_rate": round(majority, 6),
            "final_train_loss": round(train_loss, 6),
            "build_seconds": round(time.perf_counter() - start, 1),
            "build_cpu_seconds": round(time.process_time() - start_cpu, 1),
            **run_versions(device),
        }
        _write_manifest(tmp, manifest)
    logger.info("built %r: held-out accuracy %.4f in %.0f s", task, accuracy,
                manifest["build_seconds"])
    return target


def load_demo_classifier(
    task: str = "sms-spam",
    *,
    rebuild: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    device: str = "cpu",
    config: ZooConfig | None = None,
) -> tuple[Any, DemoSplits]:
    """A fine-tuned demo classifier as a hooked model, with the split it was trained on.

    Uses the cached build in :func:`zoo_dir` when its manifest matches (task, settings, data,
    base model); otherwise, or with ``rebuild=True``, builds it (:func:`build_demo_classifier`:
    about 1 CPU-minute for ``sms-spam``, 2 for ``trec-6``; longer on a busy machine). It was
    trained and evaluated on texts truncated to ``config.max_length`` tokens (64): analyse it
    with the same limit.

    Args:
        task: a name in :data:`DEMO_TASKS` (``"sms-spam"``, ``"trec-6"``).
        rebuild: build anew even if a matching cache exists.
        cache_dir: cache root (see :func:`cache_root`).
        progress: show tqdm progress bars while building.
        device: ``"cpu"`` or ``"cuda"``: where to build and load.
        config: build settings; default: the task's registered config.

    Returns:
        ``(model, splits)``: ``model`` from :func:`synapse_lens.load_classifier` (logits
        ``[batch, n_classes]``); ``splits`` holds the training and held-out texts and labels.

    Raises:
        ValueError: unknown task, bad config, bad device.
        ModuleNotFoundError: the base model or data package is not installed.

    Example:
        >>> model, splits = load_demo_classifier("trec-6")  # doctest: +SKIP
        >>> read_manifest("trec-6")["held_out_accuracy"]  # doctest: +SKIP
    """
    from synapse_lens.models import load_classifier
    from synapse_lens.models.checkpoints import resolve_device

    resolve_device(device)
    cfg = _config(task, config)
    splits = demo_splits(task, cfg)
    target = zoo_dir(task, cache_dir, config=cfg)
    reason = "rebuild requested" if rebuild else _stale_reason(
        target, read_manifest(task, cache_dir, config=cfg), _cache_key(task, cfg, splits)
    )
    if reason is not None:
        logger.info("building demo classifier %r (%s)", task, reason)
        build_demo_classifier(task, config=cfg, cache_dir=cache_dir, progress=progress,
                              device=device)
    return load_classifier(target, device=device), splits
