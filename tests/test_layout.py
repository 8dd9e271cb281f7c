"""The layout is the architecture: every `import` of cronplus, read from the source (top level,
inside functions and under TYPE_CHECKING alike), flows one way between the packages that each
package's docstring declares, no module imports itself back through others, sqlite3 is
imported under cronplus/store/ only, and no module grows past ~450 lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "cronplus"
MAX_LINES = 450

# Each package and what it may import; "foundation" is the modules at the top of cronplus/
# (status, errors, model, clock, paths, ...), which import nothing of cronplus but each other.
MAY_IMPORT: dict[str, set[str]] = {
    "foundation": set(),
    "crontab": {"foundation"},
    "store": {"foundation"},
    "engine": {"foundation", "crontab", "store"},
    "alerts": {"foundation", "crontab", "store", "engine"},
    "service": {"foundation", "crontab", "store", "engine", "alerts"},
    "web": {"foundation", "crontab", "store", "engine", "alerts", "service"},
    "cli": {"foundation", "crontab", "store", "engine", "alerts", "service", "web"},
}
# Modules over MAX_LINES, each with why it is not split yet; the list must shrink, not grow.
TOO_LONG: dict[str, str] = {}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


MODULES = _modules()


def _imports(name: str, path: Path) -> dict[str, int]:
    """Every module this one imports (cronplus's and others), with the first line that does."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names
                                  if f"{module}.{alias.name}" in MODULES]
        for target in targets:
            found.setdefault(target, node.lineno)
    return found


def _own(target: str) -> str | None:
    """The cronplus module that an import of `target` loads (a name in it: its module)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


GRAPH: dict[str, dict[str, int]] = {}
for _name, _path in MODULES.items():
    GRAPH[_name] = {}
    for _target, _line in _imports(_name, _path).items():
        _mod = _own(_target)
        if _mod is not None and _mod != _name:
            GRAPH[_name].setdefault(_mod, _line)


def _layer(name: str) -> str:
    if name == "cronplus.__main__":  # `python -m cronplus`: the command line's entry point
        return "cli"
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in MAY_IMPORT else "foundation"


def _circles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in GRAPH[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read_from_every_kind_of_import() -> None:
    # A TYPE_CHECKING import, a function-level one and `from package import module` all count.
    assert "cronplus.engine.dagrun" in GRAPH["cronplus.engine.chain"]  # under TYPE_CHECKING
    assert "cronplus.engine.policy" in GRAPH["cronplus.engine.chain"]  # inside a function
    assert "cronplus.crontab.deps" in GRAPH["cronplus.crontab.parser"]  # from cronplus.crontab import deps
    assert len(MODULES) > 60


def test_no_import_circles_between_modules() -> None:
    assert _circles() == []


def test_packages_import_only_in_the_declared_direction() -> None:
    wrong = [f"{MODULES[a].relative_to(ROOT.parent)}:{line}: {_layer(a)} imports {b} ({_layer(b)})"
             for a, targets in GRAPH.items() for b, line in targets.items()
             if _layer(b) != _layer(a) and _layer(b) not in MAY_IMPORT[_layer(a)]]
    assert wrong == []


def test_every_package_is_declared_and_its_docstring_states_the_rule() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages == set(MAY_IMPORT) - {"foundation"}
    for package in packages:
        doc = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text())) or ""
        match = re.search(r"^May import: (.*?)\.$", doc, re.M)
        assert match, f"cronplus/{package}/__init__.py: no 'May import: ...' line in its docstring"
        stated = {word.strip() for word in match.group(1).split(",")}
        assert stated == MAY_IMPORT[package], package
    top = ast.get_docstring(ast.parse((ROOT / "__init__.py").read_text())) or ""
    assert "May import: nothing of cronplus but each other." in top


def test_package_faces_stay_light() -> None:
    # `cronplus --help` imports cronplus.cli: a package's __init__ that imported its modules
    # would put them all on that path.
    for package in MAY_IMPORT:
        init = ROOT / package / "__init__.py" if package != "foundation" else ROOT / "__init__.py"
        assert not [t for t in _imports("x", init) if t.startswith("cronplus")] or package == "cli", init


def test_sqlite3_is_imported_under_store_only() -> None:
    outside = [str(MODULES[name].relative_to(ROOT.parent)) for name in MODULES
               if _layer(name) != "store" and "sqlite3" in _imports(name, MODULES[name])]
    assert outside == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_the_line_limit_but_the_listed_ones(name: str) -> None:
    rel = MODULES[name].relative_to(ROOT).as_posix()
    lines = len(MODULES[name].read_text().splitlines())
    if rel in TOO_LONG:
        assert lines > MAX_LINES, f"{rel} is {lines} lines now: strike it from TOO_LONG"
    else:
        assert lines <= MAX_LINES, f"{rel} is {lines} lines: split it by job (or list it with a reason)"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_the_code_cites_only_documents_that_ship(name: str) -> None:
    """Comments and docstrings cite cron's man pages and source, the README and docs/: not the
    project's internal SPEC or CRON-NOTES, which a reader of the repository does not have."""
    text = MODULES[name].read_text()
    found = re.findall(r"\bSPEC\b|CRON-NOTES", text)
    assert not found, f"{MODULES[name]}: cites {sorted(set(found))}; cite README or docs/ (docs/cron-compat.md)"
