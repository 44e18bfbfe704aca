"""The fine-tuning behind the demo classifiers (see :mod:`synapse_lens.demo.zoo`).

A fixture builder, not part of the SYNAPSE method: full fine-tune of all-MiniLM-L6-v2 with a new
[CLS]-pooler classification head, seeded end to end (head initialisation and dropout inside
``torch.random.fork_rng``, batch order from an own ``torch.Generator``), AdamW with linear
warm-up and decay, dynamic padding. On CPU, the same settings give bit-identical weights.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from jaxtyping import Int

from synapse_lens.demo.datasets import DemoSplits
from synapse_lens.schema import config_dict, config_from_dict

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZooConfig:
    """Settings of one demo fine-tune (all of them are part of the cache key).

    Attributes:
        seed: seeds the split, the new head's initialisation, dropout and batch order.
        held_out: fraction of the (deduplicated) data held out, stratified.
        max_train: the most training texts (a stratified sample of the rest).
        steps: optimiser steps (the data is reshuffled every epoch).
        batch_size: training batch size.
        max_length: tokens per text (longer texts are truncated).
        lr: peak AdamW learning rate (linear warm-up, then linear decay to 0).
        warmup: fraction of ``steps`` spent warming up.
        weight_decay: AdamW weight decay (not applied to biases and LayerNorm weights).
        eval_batch_size: batch size of the held-out evaluation.
    """

    seed: int = 0
    held_out: float = 0.25
    max_train: int = 2000
    steps: int = 60
    batch_size: int = 32
    max_length: int = 64
    lr: float = 1e-4
    warmup: float = 0.1
    weight_decay: float = 0.01
    eval_batch_size: int = 128

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            kind = int if f.type in ("int", int) else float
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                kind is int and not isinstance(value, int)
            ):
                raise TypeError(f"ZooConfig.{f.name} must be {kind.__name__}, got {value!r}")
            object.__setattr__(self, f.name, kind(value))  # 1 -> 1.0 for float fields
        positive = ("max_train", "steps", "batch_size", "max_length", "eval_batch_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"ZooConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.held_out < 1.0:
            raise ValueError(f"ZooConfig.held_out must be in (0, 1), got {self.held_out}")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"ZooConfig.warmup must be in [0, 1), got {self.warmup}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"ZooConfig needs lr > 0 and weight_decay >= 0, got "
                             f"lr={self.lr}, weight_decay={self.weight_decay}")
        if self.max_length < 8 or self.max_length > 512:
            raise ValueError(f"ZooConfig.max_length must be in [8, 512], got {self.max_length}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict."""
        return config_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ZooConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are ignored."""
        return config_from_dict(cls, data)



def base_model_sha256() -> str:
    """SHA-256 (hex) of the base model's weights file (``minilm_path()/model.safetensors``).

    Raises:
        ModuleNotFoundError: the offline MiniLM package is not installed.
    """
    import hashlib

    from synapse_lens.models import minilm_path

    return hashlib.sha256((minilm_path() / "model.safetensors").read_bytes()).hexdigest()


def run_versions(device: str) -> dict[str, Any]:
    """Where and with what a build ran: device, torch thread count, library versions."""
    import torch
    import transformers

    from synapse_lens import __version__

    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "synapse_lens": __version__}
    return {"device": device, "torch_threads": torch.get_num_threads(), "versions": versions}


def collate(ids: list[list[int]], pad_id: int, device: str) -> dict[str, Any]:
    """Right-pad token id lists to the longest one.

    Returns:
        ``{"input_ids": [batch, pos], "attention_mask": [batch, pos]}`` long tensors on ``device``.
    """
    import torch

    input_ids = torch.full((len(ids), max(map(len, ids))), pad_id, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}


def _batches(lengths: list[int], batch_size: int, gen: Any) -> Iterator[list[int]]:
    """Endless training batches (row lists): every epoch a fresh permutation from ``gen``, cut
    into pools of 8 batches; each pool is sorted by length (less padding) and its batches come
    in random order."""
    import torch

    pool = 8 * batch_size
    while True:
        order = torch.randperm(len(lengths), generator=gen).tolist()
        for start in range(0, len(order), pool):
            rows = sorted(order[start : start + pool], key=lambda r: lengths[r])
            chunks = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
            for j in torch.randperm(len(chunks), generator=gen).tolist():
                yield chunks[j]


def _optimizer(model: Any, cfg: ZooConfig) -> tuple[Any, Any]:
    import torch
    import transformers

    named = list(model.named_parameters())
    no_decay = [p for n, p in named if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in named if not (n.endswith("bias") or "LayerNorm" in n)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    try:  # the fused kernel is ~30x faster than the per-tensor loop on CPU (torch >= 2.4)
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr, fused=True)
    except (RuntimeError, TypeError):
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr, foreach=False)
    schedule = transformers.get_linear_schedule_with_warmup(
        optimizer, round(cfg.warmup * cfg.steps), cfg.steps)
    return optimizer, schedule


def finetune(
    splits: DemoSplits, cfg: ZooConfig, *, device: str = "cpu", progress: bool = True
) -> tuple[Any, Any, float]:
    """Fully fine-tune all-MiniLM-L6-v2 with a new classification head on ``splits.train_*``.

    The head (pooler + linear, as in ``BertForSequenceClassification``) is initialised and
    dropout drawn under ``torch.manual_seed(cfg.seed)`` inside ``torch.random.fork_rng`` (the
    caller's global RNG state is restored afterwards); the data is reshuffled every epoch by a
    ``torch.Generator`` seeded with ``cfg.seed``, in length-sorted pools of 8 batches (less
    padding; the batches come in random order). Gradients are clipped to norm 1.

    Args:
        splits: the task's split (only the training part is read).
        cfg: the settings.
        device: ``"cpu"`` or ``"cuda"``.
        progress: show a tqdm bar over the steps (with the running loss).

    Returns:
        ``(model, tokenizer, final_loss)``: the HF ``BertForSequenceClassification`` in eval
        mode, its tokenizer, and the mean training loss of the last 10 steps.

    Raises:
        ModuleNotFoundError: the offline MiniLM package is not installed.

    Example:
        >>> splits = demo_splits("sms-spam")  # doctest: +SKIP
        >>> model, tokenizer, loss = finetune(splits, ZooConfig(steps=4))  # doctest: +SKIP
    """
    import torch
    import transformers
    from tqdm.auto import tqdm

    from synapse_lens.models import minilm_path

    base = minilm_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(base, local_files_only=True,
                                                          trust_remote_code=False)
    ids = tokenizer(list(splits.train.texts), truncation=True, max_length=cfg.max_length)
    ids = ids["input_ids"]
    labels = torch.tensor(np.array(splits.train.labels), dtype=torch.long)
    names = splits.label_names
    gen = torch.Generator().manual_seed(cfg.seed)
    dev = torch.device(device)
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        # transformers reports the new classifier weights as MISSING: expected, so muted
        verbosity = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()
        try:
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                base, num_labels=len(names), id2label=dict(enumerate(names)),
                label2id={n: i for i, n in enumerate(names)}, local_files_only=True,
                trust_remote_code=False,
            ).to(dev).train()
        finally:
            transformers.logging.set_verbosity(verbosity)
        logger.info("fine-tuning %s from %s with a new %d-class head", splits.task, base,
                    len(names))
        optimizer, schedule = _optimizer(model, cfg)
        batches, losses = _batches([len(x) for x in ids], cfg.batch_size, gen), []
        bar = tqdm(range(cfg.steps), desc=f"fine-tuning {splits.task}", unit="step",
                   disable=not progress)
        for _ in bar:
            rows = next(batches)
            batch = collate([ids[r] for r in rows], tokenizer.pad_token_id, device)
            loss = model(**batch, labels=labels[rows].to(dev)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
    return model.eval(), tokenizer, float(np.mean(losses[-10:]))


def predict(
    model: Any, tokenizer: Any, texts: tuple[str, ...] | list[str], cfg: ZooConfig, *,
    device: str = "cpu", progress: bool = True,
) -> Int[np.ndarray, " n"]:
    """Predicted class ids of a Hugging Face sequence classifier, batched, without gradients.

    Args:
        model: an HF ``*ForSequenceClassification`` in eval mode.
        tokenizer: its tokenizer.
        texts: the ``n`` texts.
        cfg: ``max_length`` and ``eval_batch_size`` are used.
        device: where ``model`` lives.
        progress: show a tqdm bar over the batches.

    Returns:
        Class ids ``[n]`` (argmax of the logits).

    Example:
        >>> predict(model, tokenizer, ["win cash now"], ZooConfig())  # doctest: +SKIP
        array([1])
    """
    import torch
    from tqdm.auto import tqdm

    ids = tokenizer(list(texts), truncation=True, max_length=cfg.max_length)["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # little padding per batch
    predicted = np.zeros(len(ids), dtype=np.int64)
    with torch.inference_mode():
        for start in tqdm(range(0, len(ids), cfg.eval_batch_size), desc="held-out accuracy",
                          unit="batch", disable=not progress):
            rows = order[start : start + cfg.eval_batch_size]
            logits = model(**collate([ids[i] for i in rows], tokenizer.pad_token_id, device)).logits
            predicted[rows] = logits.argmax(-1).cpu().numpy()
    return predicted
