"""The cross-architecture comparison, end to end: ``synapse-lens run`` on a tiny random classifier
of every family this backend represents, then ``synapse-lens compare`` over all of them.

On TL 4.x that is all six families; on TL 3.x (``HookedEncoder``) ALBERT is refused and ELECTRA
is built without its embedding projection, the only ELECTRA that converts exactly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synapse_lens.cli import main
from synapse_lens.models.loading import installed_backend, supported_architectures
from synapse_lens.schema import read_run
from synapse_lens.testing import FAMILIES, TINY_WORDS, tiny_classifier_dir

BACKEND = installed_backend()
TL3 = BACKEND == "tl3-hooked-encoder"
#: the families of this backend, in FAMILIES order
COMPARED = [f for f in FAMILIES
            if f in {fam for fam, _ in supported_architectures(BACKEND).values()}]
# two ranking methods keep the comparison quick (the full default set runs in test_cli)
FAST = ["--k", "1,4", "--seeds", "2", "--class-k", "4", "--max-examples", "48", "--quiet",
        "--rankings", "probe,attribution", "--no-exact", "--sigmas", "0,2", "--eps", "0,0.5"]
N_CLASSES = 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """family -> run directory, each from ``synapse-lens run`` on the same labelled file."""
    root = tmp_path_factory.mktemp("compare-arch")
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(TINY_WORDS, size=int(rng.integers(3, 12)))) for _ in range(48)]
    labels = [f"class_{i % N_CLASSES}" for i in range(len(texts))]
    pd.DataFrame({"text": texts, "label": labels}).to_csv(root / "data.csv", index=False)
    out = {}
    for family in COMPARED:
        # embedding_size == d_model (32, the tiny default): ELECTRA without a projection
        extra = {"embedding_size": 32} if TL3 and family == "electra" else {}
        model = tiny_classifier_dir(root / "models" / family, family, seed=3,
                                    n_classes=N_CLASSES, **extra)
        out[family] = root / "runs" / family
        assert main(["run", "--model", str(model), "--data", str(root / "data.csv"),
                     "--text-column", "text", "--label-column", "label",
                     "--out", str(out[family]), *FAST]) == 0
    return out


def test_backend_compares_its_families() -> None:
    expected = ["bert", "roberta", "xlm-roberta", "electra", "distilbert"]
    if not TL3:
        expected.append("albert")
    assert expected == COMPARED


def test_every_family_uses_the_same_hook_vocabulary(runs: dict[str, Path]) -> None:
    hooks = {}
    for family, run in runs.items():
        summary = json.loads((run / "summary.json").read_text())
        assert summary["model"]["family"] == family
        assert summary["model"]["n_layers"] == 2
        hooks[family] = sorted(set(pd.read_csv(run / "tables" / "probes.csv")["hook_name"]))
    first = hooks[COMPARED[0]]
    assert len(first) == 3 and all(h.startswith("blocks.") for h in first)  # embeddings + 2
    assert all(h == first for h in hooks.values()), hooks


def test_compare_report_covers_every_family(runs: dict[str, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "compare"
    assert main(["compare", *map(str, runs.values()), "--out", str(out)]) == 0
    assert str(out.resolve()) in capsys.readouterr().out
    html = (out / "report.html").read_text()
    assert f"SYNAPSE comparison — {len(runs)} runs" in html
    overview = html.split('id="overview"', 1)[1].split("</table>", 1)[0]
    assert set(re.findall(r"<td class=\"text\">data · ([a-z-]+)</td>", overview)) == set(runs)
    architectures = {json.loads((run / "summary.json").read_text())["model"]["architecture"]
                     for run in runs.values()}
    assert len(architectures) == len(runs)
    for architecture in architectures:
        assert f"<td class=\"text\">{architecture}, 2 × 32</td>" in overview, architecture
    for figure in ("probes", "ablation", "redundancy", "asymmetry"):
        script = html.split(f'id="fig-compare-{figure}"', 1)[1].split("</script>", 1)[0]
        # trace names are "<task> · <model directory>", JSON-escaped inside the script
        shown = set(re.findall(r"data \\u00b7 ([a-z-]+)", script))
        assert shown == set(runs), (figure, shown)
    # atomic: no temporary leftovers; comparison.json marks the directory as synapse_lens output
    assert sorted(p.name for p in out.iterdir()) == ["comparison.json", "report.html"]


def test_compare_tables_line_up_across_families(runs: dict[str, Path]) -> None:
    """The tables the comparison stacks have the same columns and coordinates in every run."""
    loaded = {family: read_run(run)[0] for family, run in runs.items()}
    for name in ("probes", "ablation", "redundancy", "class_asymmetry"):
        columns = {family: list(tables[name].columns) for family, tables in loaded.items()}
        assert len({tuple(c) for c in columns.values()}) == 1, (name, columns)
    for family, tables in loaded.items():
        ablation = tables["ablation"]
        assert set(ablation["order"]) >= {"top", "random", "bottom"}, family
        assert set(ablation["k"]) >= {1, 4}, family
        probes = tables["probes"]
        accuracy = probes.loc[probes["metric"] == "accuracy", "value"]
        assert len(accuracy) and accuracy.between(0, 1).all(), family
