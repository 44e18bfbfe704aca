"""Shared fixtures: tiny random classifiers written to temporary directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(2)

TEXTS = [
    "the movie was good and i love it so much really very good",
    "bad",
    "free cash prize call now",
    "what is the name of the city",
    "i hate this film it was terrible and awful and bad and not good at all",
]


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny checkpoint per supported family (2 layers, d 32, 4 heads, 3 classes)."""
    from synapse_lens.testing import tiny_classifier_dir

    return {
        family: tiny_classifier_dir(tmp_path_factory.mktemp(family), family, seed=1)
        for family in ("bert", "roberta")
    }


@pytest.fixture(scope="session")
def tiny_bert(tiny_dirs: dict[str, Path]):  # type: ignore[no-untyped-def]
    from synapse_lens import load_classifier

    return load_classifier(tiny_dirs["bert"])


@pytest.fixture
def texts() -> list[str]:
    return list(TEXTS)
