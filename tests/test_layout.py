"""The package layout (docs/design.md): stages depend one way, no import cycles, no private
name imported across packages. Read from the source with ``ast``, so a lazy import inside a
function counts like one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "synapse_lens"

#: The stages, lowest first: a module may import from its own stage and from stages before it.
STAGES: tuple[tuple[str, ...], ...] = (
    ("names", "schema", "atomic", "metrics"),
    ("models",),
    ("data",),
    ("runtime",),
    ("activations",),
    ("analysis",),
    ("interventions",),
    ("experiments",),
    ("demo",),
    ("plots",),
    ("report",),
    ("pipeline",),
    ("testing", "cli", "__main__"),
)
LEVEL = {unit: i for i, stage in enumerate(STAGES) for unit in stage}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _unit(module: str) -> str:
    """The stage unit of a module: its first-level name under synapse_lens (the package root
    itself is ``__init__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """``(imported module, imported name or None, line)`` for every synapse_lens import."""
    tree = ast.parse(MODULES[module].read_text())
    out: list[tuple[str, str | None, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names
                    if a.name.startswith("synapse_lens")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("synapse_lens"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.append((sub, None, node.lineno) if sub in MODULES else
                           (node.module, a.name, node.lineno))
    return out


def _edges() -> dict[str, set[str]]:
    return {m: {target for target, _, _ in _imports(m) if target in MODULES} for m in MODULES}


def test_stages_depend_one_way() -> None:
    bad = []
    for module in MODULES:
        if module == "synapse_lens":
            continue  # the lazy re-export table names every stage
        for target, _, line in _imports(module):
            src, dst = _unit(module), _unit(target)
            if dst == "__init__":
                continue  # __version__
            if LEVEL[dst] > LEVEL[src]:
                bad.append(f"{module}:{line} imports {target} (stage {dst} is above {src})")
    assert not bad, "\n".join(sorted(set(bad)))


def test_every_module_has_a_stage() -> None:
    assert {_unit(m) for m in MODULES} - {"__init__"} <= set(LEVEL)


def test_no_private_name_is_imported_across_packages() -> None:
    bad = []
    for module in MODULES:
        for target, name, line in _imports(module):
            if name is not None and name.startswith("_") and name != "__version__":
                owner = target.rsplit(".", 1)[0] if MODULES[target].name != "__init__.py" \
                    else target
                here = module if MODULES[module].name == "__init__.py" else \
                    module.rsplit(".", 1)[0]
                if owner != here:
                    bad.append(f"{module}:{line} imports {name} from {target}")
    assert not bad, "\n".join(bad)


def test_no_import_cycles() -> None:
    edges = _edges()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    # a package importing its own submodules (re-exports) is not a cycle of the design
    real = [c for c in cycles if not all(x.startswith(c[0]) or c[0].startswith(x) for x in c)]
    assert not real, "\n".join(" -> ".join(c) for c in real)


@pytest.mark.parametrize("path", ["benchmarks", "tests", "notebooks"])
def test_no_private_package_names_outside_the_package(path: str) -> None:
    """Benchmarks, tests and notebooks use what a user can use (tests may reach a module's own
    private helpers only through ``module._name`` attribute access, never by import)."""
    root = PACKAGE.parent / path
    bad = []
    for file in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("synapse_lens"):
                bad += [f"{file.relative_to(root.parent)}:{node.lineno} imports {a.name}"
                        for a in node.names if a.name.startswith("_") and a.name != "__version__"]
    assert not bad, "\n".join(bad)


def test_exports_are_visible_to_type_checkers_and_name_no_submodule() -> None:
    """The lazy table and the ``TYPE_CHECKING`` imports list the same names from the same
    modules, and no exported name shadows a submodule (``synapse_lens.x`` is one thing)."""
    import synapse_lens

    tree = ast.parse(MODULES["synapse_lens"].read_text())
    typed = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                typed.update({a.name: imp.module for a in imp.names if a.asname == a.name})
    assert typed == synapse_lens._EXPORTS
    assert synapse_lens.__all__ == sorted(synapse_lens._EXPORTS)
    submodules = {m.split(".")[1] for m in MODULES if m.count(".") >= 1}
    assert not submodules & set(synapse_lens.__all__)
