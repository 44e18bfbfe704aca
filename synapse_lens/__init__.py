"""synapse_lens: neuron-level robustness analysis of Transformer encoder classifiers (SYNAPSE),
as a TransformerLens plugin."""

from synapse_lens.models import ClassifierInfo, classifier_info, load_classifier
from synapse_lens.names import HookNames

__version__ = "0.1.0"

__all__ = [
    "ClassifierInfo",
    "HookNames",
    "classifier_info",
    "load_classifier",
]
