"""Tiny random encoder classifiers for tests and examples: seeded, explicitly initialised,
written with ``save_pretrained`` (no downloads)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch

Family = Literal["bert", "roberta", "xlm-roberta", "electra", "distilbert", "albert"]
FAMILIES: tuple[Family, ...] = ("bert", "roberta", "xlm-roberta", "electra", "distilbert", "albert")
#: Families whose tokenizers use RoBERTa's special tokens (<s>=0, <pad>=1, </s>=2, <unk>=3).
_ROBERTA_SPECIALS = ("roberta", "xlm-roberta")

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
    if family in _ROBERTA_SPECIALS:  # RoBERTa order: <s>=0, <pad>=1, </s>=2, <unk>=3
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    else:
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return {tok: i for i, tok in enumerate([*specials, *TINY_WORDS])}


def tiny_tokenizer(family: Family) -> object:
    """A fast WordPiece tokenizer over :func:`tiny_vocab` (``BertTokenizerFast``; for RoBERTa and
    XLM-RoBERTa with RoBERTa's special tokens and pad id 1)."""
    from transformers import BertTokenizerFast

    vocab = tiny_vocab(family)
    if family not in _ROBERTA_SPECIALS:
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


def _tiny_config(
    family: Family, common: dict[str, Any], max_positions: int, embedding_size: int
) -> Any:
    import transformers

    d_model, n_classes = common["hidden_size"], common["num_labels"]
    if family == "bert":
        return transformers.BertConfig(
            max_position_embeddings=max_positions, pad_token_id=0, **common
        )
    if family in _ROBERTA_SPECIALS:
        cls = transformers.RobertaConfig if family == "roberta" else transformers.XLMRobertaConfig
        return cls(
            max_position_embeddings=max_positions + 2,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            type_vocab_size=1,
            **common,
        )
    if family == "electra":
        return transformers.ElectraConfig(
            max_position_embeddings=max_positions,
            pad_token_id=0,
            embedding_size=embedding_size,
            **common,
        )
    if family == "albert":
        return transformers.AlbertConfig(
            max_position_embeddings=max_positions,
            pad_token_id=0,
            bos_token_id=2,
            eos_token_id=3,
            embedding_size=embedding_size,
            classifier_dropout_prob=0.0,
            hidden_act="gelu",
            **common,
        )
    # DistilBERT spells every width differently.
    return transformers.DistilBertConfig(
        vocab_size=common["vocab_size"],
        dim=d_model,
        n_layers=common["num_hidden_layers"],
        n_heads=common["num_attention_heads"],
        hidden_dim=common["intermediate_size"],
        max_position_embeddings=max_positions,
        pad_token_id=0,
        dropout=0.0,
        attention_dropout=0.0,
        seq_classif_dropout=0.0,
        initializer_range=common["initializer_range"],
        num_labels=n_classes,
        id2label=common["id2label"],
        label2id=common["label2id"],
    )


_CLASSES: dict[str, tuple[str, str]] = {  # family -> (classifier class, bare encoder class)
    "bert": ("BertForSequenceClassification", "BertModel"),
    "roberta": ("RobertaForSequenceClassification", "RobertaModel"),
    "xlm-roberta": ("XLMRobertaForSequenceClassification", "XLMRobertaModel"),
    "electra": ("ElectraForSequenceClassification", "ElectraModel"),
    "distilbert": ("DistilBertForSequenceClassification", "DistilBertModel"),
    "albert": ("AlbertForSequenceClassification", "AlbertModel"),
}


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
    if embedding_size is not None and family not in ("electra", "albert"):
        raise ValueError(
            f"embedding_size applies to 'electra' and 'albert' only, not {family!r}"
        )
    common: dict[str, Any] = dict(
        vocab_size=len(tiny_vocab(family)),
        hidden_size=d_model,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        intermediate_size=d_mlp,
        num_labels=n_classes,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=0.2,
        id2label={i: f"class_{i}" for i in range(n_classes)},
        label2id={f"class_{i}": i for i in range(n_classes)},
    )
    emb = embedding_size if embedding_size is not None else max(4, d_model // 2)
    config = _tiny_config(family, common, max_positions, emb)
    for key, value in (config_overrides or {}).items():
        setattr(config, key, value)
    cls = getattr(transformers, _CLASSES[family][0 if with_head else 1])
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
