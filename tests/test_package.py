"""The package surface: lazy, complete re-exports and no import-time work."""

from __future__ import annotations

import subprocess
import sys

import synapse_lens


def test_every_export_resolves() -> None:
    for name in synapse_lens.__all__:
        assert getattr(synapse_lens, name) is not None, name


def test_import_is_light() -> None:
    code = ("import sys, synapse_lens; "
            "print(sorted(m for m in ('torch', 'sklearn', 'plotly', 'pandas', "
            "'transformer_lens') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
