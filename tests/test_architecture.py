"""The layout's rules, checked on the code itself.

import-linter (run by ./test.sh) checks the layer contracts in pyproject.toml. These
tests add what it has no contract for: no import cycle anywhere (between any two
modules of the project, at any depth), and no module importing another module's
leading-underscore name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rag", "cli", "ui", "eval", "api", "server")


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_cycles_anywhere():
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    # A package's __init__ importing its own modules is not a cycle of code.
    for m in list(graph.modules):
        for child in graph.find_modules_directly_imported_by(m):
            if m == child.rsplit(".", 1)[0] or child == m.rsplit(".", 1)[0]:
                graph.remove_import(importer=m, imported=child)
    assert _cycles(graph) == []


def test_no_module_imports_a_private_name_of_another():
    offenders = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    for alias in node.names:
                        if alias.name.startswith("_") and not alias.name.startswith("__"):
                            offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {alias.name}")
    assert offenders == []


def test_the_engine_reads_no_environment():
    """Only rag/runtime.py (process defaults) and rag/settings.py (pydantic-settings) touch it."""
    allowed = {"rag/runtime.py", "rag/settings.py"}
    offenders = [
        str(p.relative_to(ROOT)) for p in sorted((ROOT / "rag").rglob("*.py"))
        if "os.environ" in p.read_text(encoding="utf-8") and str(p.relative_to(ROOT)) not in allowed
    ]
    assert offenders == []
