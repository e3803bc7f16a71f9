"""Package shape: module sizes, no import cycles, light imports, public APIs only."""

import ast
import subprocess
import sys
from collections import deque
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "qkit"
MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path) -> dict[str, dict[str, str]]:
    """Module -> {imported module: "file:line" of the first import}, for every module under ``package``.

    Every ``import`` and ``from ... import`` statement counts, wherever it is: module level,
    function bodies, ``if TYPE_CHECKING:`` blocks. An import inside a function runs later, but
    it still makes the two modules need each other, so it cannot hide a cycle. How a statement
    becomes edges:

    - ``import a.b.c`` is an edge to ``a.b.c`` (the longest prefix that is a module here);
    - ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``
      (the name is read from ``pkg``'s ``__init__``); relative imports are resolved first;
    - importing ``a.b.c`` also runs the ``__init__`` of the packages above it, so those are
      edges too, except the packages that contain the importing module (Python is already
      importing them when the importer runs). So a package's ``__init__`` importing its own
      children is not a cycle with them, and a child importing a sibling through
      ``from pkg import sibling`` is not either; but a child reading a name from its parent's
      ``__init__`` (``from pkg import name``) while that ``__init__`` imports the child back is.
    """
    root = package.parent
    paths = {module_name(p, package): p for p in sorted(package.rglob("*.py"))}

    def known(name: str) -> str | None:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, str]] = {}
    for name, path in paths.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: dict[str, str] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [known(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(parts + [base] if base else parts)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in paths else known(base) for a in node.names]
            else:
                continue
            for target in filter(None, targets):
                above = target.split(".")
                implied = [".".join(above[:i]) for i in range(1, len(above))]
                for t in [target] + [p for p in implied if not (name + ".").startswith(p + ".")]:
                    if t != name and t in paths:
                        edges.setdefault(t, f"{path.relative_to(root)}:{node.lineno}")
        graph[name] = edges
    return graph


def import_cycles(graph: dict[str, dict[str, str]]) -> list[str]:
    """Cycles as ``import cycle: a -> b -> a (file:line, file:line)``, each the shortest through a
    module of a strongly connected component, until every module of every component is named."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def strong(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    cycles = []
    for component in sorted(components, key=lambda c: (len(c), c)):
        covered: set[str] = set()
        for start in component:  # one shortest cycle through each module not named yet
            if start in covered:
                continue
            cycle = _shortest_cycle(graph, set(component), start)
            covered |= set(cycle)
            where = ", ".join(graph[a][b] for a, b in zip(cycle, cycle[1:]))
            cycles.append(f"import cycle: {' -> '.join(cycle)} ({where})")
    return cycles


def _shortest_cycle(graph: dict[str, dict[str, str]], inside: set[str], start: str) -> list[str]:
    parent, queue, last = {start: start}, deque([start]), None
    while last is None:  # breadth first; start is on a cycle, so this ends
        v = queue.popleft()
        for w in sorted(graph[v]):
            if w == start:
                last = v
                break
            if w in inside and w not in parent:
                parent[w] = v
                queue.append(w)
    chain, v = [], last
    while v != start:
        chain.append(v)
        v = parent[v]
    return [start, *reversed(chain), start]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_under_400_lines(path):
    assert len(path.read_text().splitlines()) <= 400


def test_no_import_cycles_among_qkit_modules():
    """Layers import one way: no cycle, counting imports inside functions (see ``import_graph``)."""
    cycles = import_cycles(import_graph(PACKAGE))
    assert not cycles, "\n".join(cycles)


def test_the_cycle_check_counts_lazy_relative_and_parent_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from pkg import a\n",  # a package importing its child: fine
        "a.py": "def f():\n    from .b import g\n",  # lazy and relative: still counts
        "b.py": "import pkg.c\n",
        "c.py": "def h():\n    from pkg.a import f\n",  # closes a -> b -> c -> a
        "sub/__init__.py": "from pkg.sub.child import VALUE\n",
        "sub/child.py": "from pkg.sub import sibling\nVALUE = 1\n",  # a sibling module: no edge to sub
        "sub/sibling.py": "def k():\n    from pkg.sub import VALUE\n",  # a name of sub's __init__: a cycle
        "d.py": "from pkg.sub.sibling import k\n",  # also runs pkg.sub's __init__
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    graph = import_graph(pkg)
    assert set(graph["pkg.d"]) == {"pkg.sub.sibling", "pkg.sub"}
    assert "pkg.sub" not in graph["pkg.sub.child"] and "pkg" not in graph["pkg.a"]
    assert import_cycles(graph) == [
        "import cycle: pkg.a -> pkg.b -> pkg.c -> pkg.a (pkg/a.py:2, pkg/b.py:1, pkg/c.py:2)",
        "import cycle: pkg.sub -> pkg.sub.child -> pkg.sub.sibling -> pkg.sub "
        "(pkg/sub/__init__.py:1, pkg/sub/child.py:1, pkg/sub/sibling.py:2)",
    ]


def test_only_public_typer_api():
    """Typer vendors Click from 0.20 on (typer._click); pyproject allows older Typer, so no private imports."""
    for path in MODULES:
        text = path.read_text()
        assert "typer._click" not in text and "import click" not in text and "from click" not in text, path


@pytest.mark.parametrize(
    "module", ["qkit", "qkit.cli", "qkit.config", "qkit.engines", "qkit.presets", "qkit.resolve", "qkit.runs"]
)
def test_light_modules_import_neither_torch_nor_qiskit(module):
    code = (
        f"import sys, {module}; heavy = [m for m in ('torch', 'qiskit', 'medmnist', 'numpy') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"{module} imports {out}"


def test_tests_mirror_the_package():
    """tests/<name>/ for every sub-package of qkit, and no test folder without its sub-package."""
    tests = PACKAGE.parent / "tests"
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    folders = {p.name for p in tests.iterdir() if p.is_dir() and p.name not in ("fixtures", "__pycache__")}
    assert folders == packages, (sorted(packages - folders), sorted(folders - packages))
    for name in packages:
        assert list((tests / name).glob("test_*.py")), f"tests/{name}/ holds no test file"
