"""Batches of a dataset: tokenised once, grouped by length, right-padded. Every forward pass of a
dataset (full, plain, resumed, attribution) uses these batches, so all paths see the same padded
tensors and the same order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from synapse_lens.data import check_texts
from synapse_lens.models import classifier_info


def length_sorted_batches(
    model: Any, texts: Sequence[str], batch_size: int, max_length: int,
) -> tuple[np.ndarray, list[dict[str, Tensor]]]:
    """The texts tokenised once and grouped into batches of similar length (less padding): the
    stable length order and each batch's ``{"input_ids", "attention_mask"}`` (right padding,
    on the model's device; what :func:`synapse_lens.data.tokenize` gives for the batch). Every
    forward pass of a dataset uses these batches, so full, plain and resumed runs see the same
    padded tensors."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    texts = check_texts(texts)
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an int >= 2, got {max_length!r}")
    info = classifier_info(model)
    ids = model.tokenizer(texts, truncation=True, max_length=min(max_length, info.max_length),
                          add_special_tokens=True)["input_ids"]
    order = np.argsort(np.asarray([len(x) for x in ids]), kind="stable")
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        rows = [ids[i] for i in order[start:start + batch_size]]
        width = max(len(r) for r in rows)
        padded = np.full((len(rows), width), info.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            padded[i, :len(r)] = r
            mask[i, :len(r)] = 1
        out.append({"input_ids": torch.from_numpy(padded).to(device),
                    "attention_mask": torch.from_numpy(mask).to(device)})
    return order, out
