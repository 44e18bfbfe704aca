"""The package surface: lazy, complete re-exports and no import-time work."""

from __future__ import annotations

import subprocess
import sys

import synapse_lens
from synapse_lens import ExecOptions


def test_every_export_resolves() -> None:
    for name in synapse_lens.__all__:
        assert getattr(synapse_lens, name) is not None, name


def test_import_is_light() -> None:
    code = ("import sys, synapse_lens; "
            "print(sorted(m for m in ('torch', 'sklearn', 'plotly', 'pandas', "
            "'transformer_lens') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_reprs_are_short_and_say_what_matters(tiny_bert) -> None:  # type: ignore[no-untyped-def]
    """Printing a result in a notebook shows a line, not training texts, tensors or 384
    scores."""
    import numpy as np

    from synapse_lens import cache_cls, classifier_info, fit_probes, from_lists
    from synapse_lens.analysis.rankings import Ranking
    from synapse_lens.demo.datasets import DemoSplits

    info = classifier_info(tiny_bert)
    texts = [f"text number {i} good" if i % 2 else f"bad text {i}" for i in range(24)]
    data = from_lists(texts, [i % 3 for i in range(24)], label_names=info.id2label)
    acts = cache_cls(tiny_bert, data.texts, options=ExecOptions(progress=False))
    probes = fit_probes(acts, data, progress=False)
    ranking = Ranking(info.names.resid_post(1), 1, np.arange(info.d_model, dtype=float))
    splits = DemoSplits("demo", from_lists(texts[:20], [0, 1] * 10, ["a", "b"]),
                        from_lists(texts[20:], [0, 1, 0, 1], ["a", "b"]))
    for obj, must in ((acts, "ClsActivations(n=24, hooks="), (probes, "ProbeResults(hooks="),
                      (ranking, "top=[31, 30, 29, 28, 27, ...]"),
                      (splits, "DemoSplits(task='demo', train=20 {'a': 10, 'b': 10}")):
        text = repr(obj)
        assert must in text and len(text) < 300 and "\n" not in text, text
        assert "text number" not in text and "tensor(" not in text
