"""Loading encoder classifiers as hooked TransformerLens models."""

from synapse_lens.models.heads import EncoderWithHead, load_head
from synapse_lens.models.loading import (
    SUPPORTED_ARCHITECTURES,
    ClassifierInfo,
    classifier_info,
    installed_backend,
    load_classifier,
    supported_architectures,
)
from synapse_lens.models.minilm import minilm_path
from synapse_lens.models.tiny import (
    FAMILIES,
    tiny_classifier_dir,
    tiny_hf_classifier,
    tiny_tokenizer,
)

__all__ = [
    "FAMILIES",
    "SUPPORTED_ARCHITECTURES",
    "ClassifierInfo",
    "EncoderWithHead",
    "classifier_info",
    "installed_backend",
    "load_classifier",
    "load_head",
    "minilm_path",
    "supported_architectures",
    "tiny_classifier_dir",
    "tiny_hf_classifier",
    "tiny_tokenizer",
]
