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
