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
                      'config=__import__("synapse_lens.demo.zoo", fromlist=["ZooConfig"])'
                      '.ZooConfig(max_train=256, steps=8))')
    code = substitute(code, "data = splits.held_out", "data = splits.held_out.subset(range(120))")
    ns = run(code)
    assert len(shown) == 1 and len(shown[0].data) >= 3  # top, random, bottom curves
    logits = ns["logits"]
    assert isinstance(logits, torch.Tensor) and logits.shape == (3, 2)
    curve = ns["curve"]
    assert set(curve["order"]) == {"top", "random", "bottom"}  # type: ignore[index]


def test_loading_example(tmp_path: Path) -> None:
    from synapse_lens.testing import tiny_classifier_dir

    path = tiny_classifier_dir(tmp_path / "ckpt", "roberta", seed=0)
    code = substitute(python_blocks()[1], '"path/to/checkpoint"', repr(str(path)))
    ns = run(code)
    info: Any = ns["info"]  # of the MiniLM + head, loaded last
    assert (info.architecture, info.d_model, info.n_classes) == ("BertModel+head", 384, 2)
    assert info.pooling == "mean+l2" and info.trained_max_length == 256


def _cli_reference() -> dict[str, tuple[str, str]]:
    """``{--option: (example value, bracketed default)}`` from the README's CLI reference."""
    text = README.read_text(encoding="utf-8").split("## CLI reference", 1)[1]
    block = text.split("```", 2)[1]
    entries: dict[str, tuple[str, str]] = {}
    for entry in re.split(r"\n(?=  --)", block):
        match = re.match(r"\s+(--[a-z-]+)(?: ([^\s\[]+))?(.*)", entry, flags=re.S)
        brackets = re.findall(r"\[([^\]]*)\]", match.group(3)) if match else []
        if match and brackets:  # the last bracket holds the default
            entries[match.group(1)] = (match.group(2) or "", " ".join(brackets[-1].split()))
    return entries


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(_shown(v) for v in value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def test_readme_cli_reference_matches_the_parser() -> None:
    """Every option of `demo` and `run` is in the README's reference, and every default the
    README states literally is the parser's (options whose default is computed say how)."""
    import argparse

    from synapse_lens.cli import build_parser

    documented = _cli_reference()
    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    checked = 0
    for command in ("demo", "run"):
        for action in subs.choices[command]._actions:
            option = next((o for o in action.option_strings if o.startswith("--")), None)
            if option in (None, "--help", "--model", "--data", "--text-column",
                          "--label-column", "--out", "--task", "--rebuild", "--overwrite",
                          "--encoding", "--no-exact"):
                continue  # in the usage lines above the option list
            assert option in documented, f"{option} is not in the README's CLI reference"
            example, bracket = documented[option]
            if action.default is None or action.default is False:
                continue  # computed defaults ("all", "5 % of the width", ...) are described
            first = example if bracket.startswith("these") else re.split(r"[;\s]", bracket)[0]
            assert first == _shown(action.default), (option, bracket, action.default)
            checked += 1
    assert checked >= 8


def test_readme_predictions_are_the_demo_classifiers(tmp_path: Path) -> None:
    """The predictions the README's example states are what the real demo classifier (built
    here with its default settings, in a private cache) says."""
    import ast

    import torch

    from synapse_lens import classifier_info
    from synapse_lens.demo.zoo import load_demo_classifier

    code = python_blocks()[0]
    texts = ast.literal_eval(re.search(r"texts = (\[.*?\])\n", code, flags=re.S).group(1))
    stated = ast.literal_eval(re.search(r"argmax\(-1\)\]\)\s+# (\[.*?\])", code).group(1))
    model, _ = load_demo_classifier("sms-spam", cache_dir=tmp_path, progress=False)
    with torch.inference_mode():
        probs = model(texts).softmax(-1)
    labels = classifier_info(model).id2label
    assert [labels[i] for i in probs.argmax(-1)] == stated
    shown = re.findall(r"\((\d+\.\d) %\)", README.read_text(encoding="utf-8").split(
        "The second text reads as spam", 1)[1][:200])
    assert shown == [f"{100 * probs[1].max():.1f}", f"{100 * probs[0].max():.1f}"]
