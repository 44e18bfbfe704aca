"""The README's Python examples run as written, with three spelled-out substitutions for speed
and for the placeholder path: a short fine-tune, 120 held-out texts, a tiny checkpoint."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def substitute(code: str, old: str, new: str) -> str:
    assert old in code, f"the README example no longer contains {old!r}: update this test"
    return code.replace(old, new)


def run(code: str) -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": "readme"}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


def test_readme_has_the_two_examples() -> None:
    blocks = python_blocks()
    assert len(blocks) == 2
    assert "load_demo_classifier" in blocks[0] and "load_classifier(" in blocks[1]


def test_notebook_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import plotly.basedatatypes
    import torch

    monkeypatch.setenv("SYNAPSE_LENS_CACHE", str(tmp_path / "cache"))
    shown = []
    monkeypatch.setattr(plotly.basedatatypes.BaseFigure, "show",
                        lambda fig, *a, **k: shown.append(fig))
    code = python_blocks()[0]
    code = substitute(code, 'sl.load_demo_classifier("sms-spam")',
                      'sl.load_demo_classifier("sms-spam", progress=False, '
                      'config=__import__("synapse_lens.zoo").zoo.ZooConfig('
                      'max_train=256, steps=8))')
    code = substitute(code, "data = splits.held_out", "data = splits.held_out.subset(range(120))")
    ns = run(code)
    assert len(shown) == 1 and len(shown[0].data) >= 3  # top, random, bottom curves
    logits = ns["logits"]
    assert isinstance(logits, torch.Tensor) and logits.shape == (1, 2)
    curve = ns["curve"]
    assert set(curve["order"]) == {"top", "random", "bottom"}  # type: ignore[index]


def test_loading_example(tmp_path: Path) -> None:
    from synapse_lens.models import tiny_classifier_dir

    path = tiny_classifier_dir(tmp_path / "ckpt", "roberta", seed=0)
    code = substitute(python_blocks()[1], '"path/to/checkpoint"', repr(str(path)))
    ns = run(code)
    info: Any = ns["info"]  # of the MiniLM + head, loaded last
    assert (info.architecture, info.d_model, info.n_classes) == ("BertModel+head", 384, 2)
