"""The three notebooks run top to bottom (tiny settings: SYNAPSE_LENS_FAST=1, a private cache)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from synapse_lens.models.loading import installed_backend

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def notebook_env(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    saved = dict(os.environ)
    os.environ["SYNAPSE_LENS_FAST"] = "1"
    os.environ["SYNAPSE_LENS_CACHE"] = str(tmp_path_factory.mktemp("zoo-cache"))
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_three_notebooks_exist() -> None:
    assert [p.stem for p in NOTEBOOKS] == ["01_quickstart", "02_activation_patching",
                                           "03_cross_task"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path: Path, notebook_env: None, tmp_path: Path) -> None:
    book = nbformat.read(path, as_version=4)
    # one extra cell: the kernel must run this environment's backend (TL 4.x or TL 3.9)
    book.cells.append(nbformat.v4.new_code_cell(
        "from synapse_lens.models.loading import installed_backend\nprint(installed_backend())"))
    NotebookClient(book, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [out for cell in book.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors
    assert book.cells[-1].outputs[0]["text"].strip() == installed_backend()


def _runner():  # type: ignore[no-untyped-def]
    import importlib.util

    path = NOTEBOOKS[0].parent / "run_notebooks.py"
    spec = importlib.util.spec_from_file_location("run_notebooks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_come_from_the_current_code(path: Path) -> None:
    """The committed notebooks carry the outputs of a full run (`make notebooks`) of today's
    package and cells: every code cell ran, in order, without an error, the figures are there
    as PNG for a code host, and the recorded hash of the code equals the hash of the code now
    (run `make notebooks` after changing synapse_lens or a notebook)."""
    book = nbformat.read(path, as_version=4)
    record = book.metadata.get("synapse_lens", {})
    assert record.get("source_hash") == _runner().source_hash(book), (
        f"{path.name}: its outputs are older than the code; run `make notebooks`")
    code = [cell for cell in book.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    outputs = [out for cell in code for out in cell.outputs]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    assert any("image/png" in out.get("data", {}) for out in outputs), "no figure as PNG"
