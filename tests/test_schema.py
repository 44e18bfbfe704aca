"""The run directory's schema: configs round-trip through JSON the same way, every table the
report reads has a name and columns, the sentinels have one spelling."""

from __future__ import annotations

import json

import pytest

from synapse_lens import RunConfig
from synapse_lens.demo.train import ZooConfig
from synapse_lens.experiments.suite import StressConfig
from synapse_lens.schema import ALL, FLIP, GLOBAL, REQUIRED_COLUMNS, TABLE_NAMES, config_dict


@pytest.mark.parametrize("config", [RunConfig(ks=(1, 4), rankings=("probe",)),
                                    StressConfig(ks=(2, 8), sigmas=(0.5, 1.0)),
                                    ZooConfig(steps=7)])
def test_configs_round_trip_through_json(config: object) -> None:
    data = json.loads(json.dumps(config.to_dict()))  # type: ignore[attr-defined]
    assert data == config_dict(config)
    assert type(config).from_dict({**data, "from_a_newer_version": 1}) == config  # type: ignore[attr-defined]


def test_every_required_table_has_a_name() -> None:
    assert set(REQUIRED_COLUMNS) <= set(TABLE_NAMES)
    assert "noise_summary" in TABLE_NAMES


def test_sentinels_are_spelled_once() -> None:
    """``"__global__"``, ``"__all__"`` and ``"__flip__"`` are written in schema.py only; everyone
    imports them."""
    import ast
    from pathlib import Path

    import synapse_lens

    root = Path(synapse_lens.__file__).parent
    spelled = sorted(str(path.relative_to(root)) for path in root.rglob("*.py")
                     for node in ast.walk(ast.parse(path.read_text()))
                     if isinstance(node, ast.Constant) and node.value in (GLOBAL, ALL, FLIP))
    assert spelled == ["schema.py"] * 4  # GLOBAL, ALL, ALL_HOOKS, FLIP
