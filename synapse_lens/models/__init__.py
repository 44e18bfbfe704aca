"""Loading encoder classifiers as hooked TransformerLens models."""

from synapse_lens.models.heads import EncoderWithHead
from synapse_lens.models.loading import (
    SUPPORTED_ARCHITECTURES,
    ClassifierInfo,
    classifier_info,
    load_classifier,
)
from synapse_lens.models.minilm import minilm_path
from synapse_lens.models.tiny import tiny_classifier_dir, tiny_hf_classifier, tiny_tokenizer

__all__ = [
    "SUPPORTED_ARCHITECTURES",
    "ClassifierInfo",
    "EncoderWithHead",
    "classifier_info",
    "load_classifier",
    "minilm_path",
    "tiny_classifier_dir",
    "tiny_hf_classifier",
    "tiny_tokenizer",
]
