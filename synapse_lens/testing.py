"""Tiny random encoder classifiers for tests and examples: seeded, explicitly initialised,
written with ``save_pretrained`` (no downloads)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

import torch

from synapse_lens.models.families import FAMILIES as RECORDS

Family = Literal["bert", "roberta", "xlm-roberta", "electra", "distilbert", "albert"]
#: Every supported family, in the order of :data:`synapse_lens.models.families.FAMILIES`.
FAMILIES = cast("tuple[Family, ...]", tuple(RECORDS))

#: Words the tiny tokenizers know, so that test texts do not all become [UNK].
TINY_WORDS: tuple[str, ...] = tuple(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "but",
        "not",
        "no",
        "yes",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "this",
        "that",
        "these",
        "those",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "me",
        "him",
        "her",
        "us",
        "them",
        "my",
        "your",
        "his",
        "its",
        "our",
        "their",
        "good",
        "bad",
        "great",
        "terrible",
        "awful",
        "nice",
        "love",
        "hate",
        "like",
        "movie",
        "film",
        "book",
        "food",
        "service",
        "price",
        "free",
        "win",
        "prize",
        "call",
        "now",
        "text",
        "stop",
        "money",
        "cash",
        "urgent",
        "offer",
        "claim",
        "reply",
        "what",
        "who",
        "where",
        "when",
        "why",
        "how",
        "which",
        "many",
        "much",
        "question",
        "answer",
        "city",
        "country",
        "person",
        "number",
        "date",
        "time",
        "place",
        "name",
        "thing",
        "very",
        "really",
        "quite",
        "so",
        "too",
        "also",
        "just",
        "only",
        "then",
        "than",
        "there",
        "here",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "about",
        "as",
        "into",
        "over",
        "after",
        "before",
        "up",
        "down",
        "out",
        "off",
        "again",
        "once",
    ]
)


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")


def tiny_vocab(family: Family) -> dict[str, int]:
    """A word-level vocabulary with the family's special tokens first (RoBERTa order for
    RoBERTa / XLM-RoBERTa, BERT order with [PAD]=0 otherwise)."""
    _check_family(family)
    if RECORDS[family].roberta_tokens:  # RoBERTa order: <s>=0, <pad>=1, </s>=2, <unk>=3
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    else:
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return {tok: i for i, tok in enumerate([*specials, *TINY_WORDS])}


def tiny_tokenizer(family: Family) -> object:
    """A fast WordPiece tokenizer over :func:`tiny_vocab` (``BertTokenizerFast``; for RoBERTa and
    XLM-RoBERTa with RoBERTa's special tokens and pad id 1)."""
    from transformers import BertTokenizerFast

    vocab = tiny_vocab(family)
    if not RECORDS[family].roberta_tokens:
        return BertTokenizerFast(vocab=vocab, do_lower_case=True)
    return BertTokenizerFast(
        vocab=vocab,
        do_lower_case=True,
        unk_token="<unk>",
        sep_token="</s>",
        pad_token="<pad>",
        cls_token="<s>",
        mask_token="<mask>",
    )


def _tiny_config(family: Family, n_layers: int, d_model: int, n_heads: int, d_mlp: int,
                 n_classes: int, max_positions: int, embedding_size: int) -> Any:
    """The tiny HF config: the family record's config class, width names and extra values."""
    import transformers

    rec = RECORDS[family]
    layers, width, mlp = rec.widths
    values: dict[str, Any] = {
        "vocab_size": len(tiny_vocab(family)), layers: n_layers, width: d_model,
        rec.heads: n_heads, mlp: d_mlp, "num_labels": n_classes, "initializer_range": 0.2,
        "id2label": {i: f"class_{i}" for i in range(n_classes)},
        "label2id": {f"class_{i}": i for i in range(n_classes)},
        **rec.tiny_config,
    }
    # RoBERTa-style position tables reserve pad_token_id + 1 rows before the first position
    offset = int(rec.tiny_config["pad_token_id"]) + 1 if rec.positions_after_pad else 0
    values["max_position_embeddings"] = max_positions + offset
    if rec.embed_projection is not None:
        values["embedding_size"] = embedding_size
    return getattr(transformers, rec.config_class)(**values)


def tiny_hf_classifier(
    family: Family = "bert",
    *,
    n_layers: int = 2,
    d_model: int = 32,
    n_heads: int = 4,
    d_mlp: int = 64,
    n_classes: int = 3,
    max_positions: int = 64,
    seed: int = 0,
    with_head: bool = True,
    embedding_size: int | None = None,
    config_overrides: Mapping[str, Any] | None = None,
) -> torch.nn.Module:
    """A random HF ``*ForSequenceClassification`` of ``family`` (or the bare ``*Model`` when
    ``with_head=False``), initialised from ``seed`` without touching the global RNG.

    Args:
        family: one of :data:`FAMILIES`.
        n_layers, d_model, n_heads, d_mlp, n_classes: widths (``d_model`` divisible by
            ``n_heads``).
        max_positions: usable sequence length.
        seed: weight seed.
        with_head: ``False`` gives the bare encoder.
        embedding_size: ELECTRA / ALBERT only: width of the token embeddings (projected to
            ``d_model`` before layer 0); defaults to ``max(4, d_model // 2)`` so that the
            projection is exercised.
        config_overrides: extra HF config fields (e.g. ``{"num_hidden_groups": 2}`` for ALBERT).

    Returns:
        The HF model in eval mode. Weights follow HF's own initialiser (normal linear/embedding
        weights, zero biases, unit LayerNorm) with a larger std (0.2) so that the tiny model's
        outputs depend visibly on its inputs; dropout is off.

    Raises:
        ValueError: unknown family, ``d_model`` not divisible by ``n_heads``, or
            ``embedding_size`` for a family without a separate embedding width.

    Example:
        >>> model = tiny_hf_classifier("albert", n_layers=3, seed=1)
        >>> type(model).__name__
        'AlbertForSequenceClassification'
    """
    import transformers

    _check_family(family)
    if d_model % n_heads:
        raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
    if embedding_size is not None and RECORDS[family].embed_projection is None:
        with_width = [f for f, r in RECORDS.items() if r.embed_projection is not None]
        raise ValueError(f"embedding_size applies to {with_width} only, not {family!r}")
    emb = embedding_size if embedding_size is not None else max(4, d_model // 2)
    config = _tiny_config(family, n_layers, d_model, n_heads, d_mlp, n_classes, max_positions,
                          emb)
    for key, value in (config_overrides or {}).items():
        setattr(config, key, value)
    rec = RECORDS[family]
    cls = getattr(transformers, rec.classifier if with_head else rec.encoder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model: Any = cls(config)
        model.init_weights()  # explicit, seeded initialisation
    return model.eval()


def tiny_classifier_dir(
    path: str | Path,
    family: Family = "bert",
    **kwargs: object,
) -> Path:
    """Write a tiny random classifier and its tokenizer to ``path`` (``save_pretrained`` layout)
    and return ``path``; keyword arguments go to :func:`tiny_hf_classifier`.

    Example:
        >>> tiny_classifier_dir(tmp_path, family="distilbert", n_layers=3)  # doctest: +SKIP
    """
    path = Path(path)
    model: Any = tiny_hf_classifier(family, **kwargs)  # type: ignore[arg-type]
    model.save_pretrained(path)
    tiny_tokenizer(family).save_pretrained(path)  # type: ignore[attr-defined]
    return path
