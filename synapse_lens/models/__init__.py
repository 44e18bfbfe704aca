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

__all__ = [
    "SUPPORTED_ARCHITECTURES",
    "ClassifierInfo",
    "EncoderWithHead",
    "classifier_info",
    "installed_backend",
    "load_classifier",
    "load_head",
    "minilm_path",
    "supported_architectures",
]
