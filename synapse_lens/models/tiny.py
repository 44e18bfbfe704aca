"""Tiny random encoder classifiers for tests and examples: seeded, explicitly initialised,
written with ``save_pretrained`` (no downloads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch

Family = Literal["bert", "roberta"]

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


def tiny_vocab(family: Family) -> dict[str, int]:
    """A word-level vocabulary with the family's special tokens first."""
    if family == "bert":
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    else:  # RoBERTa order: <s>=0, <pad>=1, </s>=2, <unk>=3
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    return {tok: i for i, tok in enumerate([*specials, *TINY_WORDS])}


def tiny_tokenizer(family: Family) -> object:
    """A fast WordPiece tokenizer over :func:`tiny_vocab` (``BertTokenizerFast``; for RoBERTa with
    RoBERTa's special tokens and pad id 1)."""
    from transformers import BertTokenizerFast

    vocab = tiny_vocab(family)
    if family == "bert":
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
) -> torch.nn.Module:
    """A random HF ``{Bert,Roberta}ForSequenceClassification`` (or bare ``*Model`` when
    ``with_head=False``), initialised from ``seed`` without touching the global RNG.

    Weights follow HF's own initialiser (normal(0, 0.02) linear/embedding weights, zero biases,
    unit LayerNorm) with a larger std (0.2) so that the tiny model's outputs depend visibly on
    its inputs; dropout is off.
    """
    import transformers

    if d_model % n_heads:
        raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
    vocab_size = len(tiny_vocab(family))
    common: dict[str, Any] = dict(
        vocab_size=vocab_size,
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
    config: Any
    cls: Any
    if family == "bert":
        config = transformers.BertConfig(
            max_position_embeddings=max_positions, pad_token_id=0, **common
        )
        cls = transformers.BertForSequenceClassification if with_head else transformers.BertModel
    elif family == "roberta":
        config = transformers.RobertaConfig(
            max_position_embeddings=max_positions + 2,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            type_vocab_size=1,
            **common,
        )
        cls = (
            transformers.RobertaForSequenceClassification
            if with_head
            else transformers.RobertaModel
        )
    else:
        raise ValueError(f"family must be 'bert' or 'roberta', got {family!r}")
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
    and return ``path``; keyword arguments go to :func:`tiny_hf_classifier`."""
    path = Path(path)
    model: Any = tiny_hf_classifier(family, **kwargs)  # type: ignore[arg-type]
    model.save_pretrained(path)
    tiny_tokenizer(family).save_pretrained(path)  # type: ignore[attr-defined]
    return path
