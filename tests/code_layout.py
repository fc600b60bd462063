"""The shape of the code, measured from its source: module sizes, function lengths, the import graph.

``tests/test_code_layout.py`` holds the limits; ``python tests/code_layout.py`` prints the report
(module count, largest modules, longest functions, import cycles).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

from paths import PROJECT_ROOT

ROOT = PROJECT_ROOT
PACKAGES = ("grader", "server")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# copied alone into the sandbox and the starter kit, so it cannot be split; migrations are written once
MODULE_EXCEPTIONS = {"grader/harness.py"}
FUNCTION_EXCEPTION_FOLDERS = ("server/migrations/",)


@dataclass(frozen=True)
class Function:
    module: str
    name: str
    line: int
    lines: int


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def line_count(path: Path) -> int:
    return len(path.read_text().splitlines())


def functions(path: Path) -> list[Function]:
    """Every function and method, with its length in lines (decorators not counted)."""
    tree = ast.parse(path.read_text())
    return [
        Function(relative(path), node.name, node.lineno, node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The package modules ``name`` imports, anywhere in the file (function-level imports count too)."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            submodules = [f"{prefix}.{alias.name}" for alias in node.names]
            # ``from package import name``: the submodule where name is one, else the package itself
            targets = [target if target in known else prefix for target in submodules]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports(path, name, known) for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    edges = graph
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def report() -> str:
    found = modules()
    sizes = sorted(((line_count(path), relative(path)) for path in found.values()), reverse=True)
    longest = sorted((function for path in found.values() for function in functions(path)), key=lambda f: -f.lines)
    lines = [f"modules: {len(found)} ({sum(size for size, _ in sizes)} lines)", "largest modules:"]
    lines += [f"  {size:5d}  {path}" for size, path in sizes[:8]]
    lines.append("longest functions:")
    lines += [f"  {f.lines:5d}  {f.module}:{f.line} {f.name}" for f in longest[:8]]
    lines.append(f"import cycles: {len(cycles(import_graph()))}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(report() + "\n")
