"""Package shape: module sizes, no import cycles, light imports, public APIs only."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "qkit"
MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path) -> set[str]:
    """qkit modules imported when ``path`` is imported (module level only, not inside functions)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("qkit")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qkit"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    names = {module_name(p) for p in MODULES}
    return {n for n in found if n in names}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_under_400_lines(path):
    assert len(path.read_text().splitlines()) <= 400


def test_no_import_cycles_among_qkit_modules():
    graph = {module_name(p): top_level_imports(p) - {module_name(p)} for p in MODULES}
    # A package imports its sub-modules to re-export them; that is not a cycle with its children.
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])


def test_only_public_typer_api():
    """Typer vendors Click from 0.20 on (typer._click); pyproject allows older Typer, so no private imports."""
    for path in MODULES:
        text = path.read_text()
        assert "typer._click" not in text and "import click" not in text and "from click" not in text, path


@pytest.mark.parametrize("module", ["qkit", "qkit.cli", "qkit.config", "qkit.engines", "qkit.runs"])
def test_light_modules_import_neither_torch_nor_qiskit(module):
    code = (f"import sys, {module}; heavy = [m for m in ('torch', 'qiskit', 'medmnist', 'numpy') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"{module} imports {out}"
