"""Execute the notebooks in place with the real settings and keep their outputs (`make notebooks`).

Each executed notebook records in its metadata the synapse_lens version and a hash of the code it
ran: the package's source files and its own cells (:func:`source_hash`). The test suite recomputes
that hash, so committed outputs that are older than the code fail the tests until this script
runs again. Figures are stored twice: plotly's JSON (interactive in Jupyter) and a PNG (what a
code host shows); the PNG needs kaleido (`pip install -e ".[notebooks]"`) and Chrome/Chromium.

Usage: python notebooks/run_notebooks.py [NAME ...]   (default: every notebook)
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent / "synapse_lens"


def source_hash(book: nbformat.NotebookNode) -> str:
    """SHA-256 of the package's ``*.py`` files (path and bytes, sorted) and the notebook's cells
    (type and source): what decides the outputs besides the models and data packages."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE.parent).as_posix().encode())
        digest.update(path.read_bytes())
    for cell in book.cells:
        digest.update(cell.cell_type.encode())
        digest.update(cell.source.encode())
    return digest.hexdigest()


def execute(path: Path) -> float:
    """Run one notebook top to bottom in a scratch directory; write it back with outputs."""
    import synapse_lens

    book = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    env.pop("SYNAPSE_LENS_FAST", None)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="synapse-notebook-") as scratch:
        NotebookClient(book, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": scratch}}).execute(env=env)
    book.metadata["synapse_lens"] = {"version": synapse_lens.__version__,
                                     "source_hash": source_hash(book)}
    nbformat.write(book, path)
    return time.perf_counter() - started


def main(names: list[str]) -> int:
    paths = sorted(HERE.glob("*.ipynb"))
    if names:
        paths = [p for p in paths if p.stem in names]
    for path in paths:
        seconds = execute(path)
        sys.stdout.write(f"{path.name}: executed in {seconds:.0f} s\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
