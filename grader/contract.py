"""The submission contract, checked on the server before anything is queued (no code is run).

The server calls ``train(data)`` with one argument, so the code must define ``train`` at the top level of
the module taking exactly one positional argument (more with defaults, or ``*args``, are fine). Names
bound in ways the parser cannot see into -- ``train = make_train()``, ``from helpers import train`` -- are
accepted: they may well be right, and the harness reports plainly when they are not.

Suspicious but legal code is not refused; it gets warnings that the submission page shows (reading the
hidden labels, shelling out, network imports, ``input()``, ``train`` defined twice or only inside a block).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

NETWORK_MODULES = ("requests", "urllib.request", "http.client", "socket", "httpx", "aiohttp", "ftplib", "smtplib")
SHELL_CALLS = {
    ("os", "system"),
    ("os", "popen"),
    ("subprocess", "run"),
    ("subprocess", "call"),
    ("subprocess", "Popen"),
    ("subprocess", "check_call"),
    ("subprocess", "check_output"),
}
SIGNATURE_HINT = "write it as `def train(data):` at the top level of your file (not indented)"
MAX_WARNINGS = 8


class ContractViolation(Exception):
    """The code cannot work with the server's call ``train(data)``; ``line`` points at the culprit (or None)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


@dataclass
class ContractReport:
    """What the check found in code that keeps the contract: warnings in plain words (each at most once)."""

    warnings: list[str] = field(default_factory=list)

    def warn(self, text: str) -> None:
        if text not in self.warnings and len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(text)


def check_contract(text: str) -> ContractReport:
    """Raise ContractViolation when ``train`` is missing or takes the wrong arguments; else return the warnings.

    ``text`` has passed ``check_source`` already (it parses).
    """
    tree = ast.parse(text, filename="submission.py")
    report = ContractReport()
    bindings = _module_bindings(tree.body, None)
    if not bindings:
        nested = _nested_train(tree)
        if nested is not None:
            node, where = nested
            raise ContractViolation(
                f"Your code defines train only inside {where} (line {node.lineno}), so the server cannot call "
                f"it: {SIGNATURE_HINT}.",
                node.lineno,
            )
        raise ContractViolation(
            f"Your code has no function train(data) at the top level: the server calls train(data); {SIGNATURE_HINT}."
        )
    last, _ = bindings[-1]
    if isinstance(last, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        _check_signature(last)
    if len(bindings) > 1:
        lines = ", ".join(str(node.lineno) for node, _ in bindings)
        report.warn(f"train is defined {len(bindings)} times (lines {lines}); only the last one that runs counts.")
    for node, block in bindings:
        if block is not None:
            report.warn(f"train is defined inside {block} (line {node.lineno}): it exists only if that block runs.")
    _suspicious(tree, report)
    return report


BLOCKS = {ast.If: "an if block", ast.Try: "a try block", ast.With: "a with block", ast.For: "a for loop"}


def _module_bindings(body: list[ast.stmt], block: str | None) -> list[tuple[ast.AST, str | None]]:
    """Statements that bind ``train`` at module level (a def, an assignment, an import), with the block they
    sit in (``if``, ``try``, ...: None at the top); class and function bodies are not module level."""
    found: list[tuple[ast.AST, str | None]] = []
    for node in body:
        if _binds_at_module_level(node):
            found.append(
                (node.value if isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda) else node, block)
            )
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, name, None)
            if isinstance(children, list) and not isinstance(
                node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
            ):
                inner = [child for child in children if isinstance(child, ast.stmt)]
                inner += [
                    stmt
                    for child in children
                    if isinstance(child, ast.excepthandler | ast.match_case)
                    for stmt in child.body
                ]
                found += _module_bindings(inner, block or BLOCKS.get(type(node), "a block"))
    return found


def _binds_at_module_level(node: ast.stmt) -> bool:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return node.name == "train"
    if isinstance(node, ast.Assign):
        return any(_binds_train(target) for target in node.targets)
    if isinstance(node, ast.AnnAssign | ast.AugAssign):
        return _binds_train(node.target)
    if isinstance(node, ast.Import | ast.ImportFrom):
        # `from helpers import *` may bring train: it cannot be told without running the code
        return any((alias.asname or alias.name.split(".")[0]) in ("train", "*") for alias in node.names)
    return False


def _binds_train(target: ast.AST) -> bool:
    if isinstance(target, ast.Name):
        return target.id == "train"
    if isinstance(target, ast.Tuple | ast.List | ast.Starred):
        elements = [target.value] if isinstance(target, ast.Starred) else target.elts
        return any(_binds_train(element) for element in elements)
    return False


def _nested_train(tree: ast.Module) -> tuple[ast.AST, str] | None:
    """The first ``def train`` inside a class or a function, with where it is ("the class Model", ...)."""
    for parent in ast.walk(tree):
        if not isinstance(parent, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for child in ast.walk(parent):
            if (
                child is not parent
                and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                and child.name == "train"
            ):
                return child, _describe(parent)
    return None


def _describe(node: ast.AST) -> str:
    kind = "class" if isinstance(node, ast.ClassDef) else "function"
    return f"the {kind} {node.name}"


def _check_signature(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
    line = function.lineno
    if isinstance(function, ast.AsyncFunctionDef):
        raise ContractViolation(
            f"train is defined with `async def` (line {line}); the server calls it as a plain function: "
            "use `def train(data):`.",
            line,
        )
    arguments = function.args
    positional = [*arguments.posonlyargs, *arguments.args]
    required = len(positional) - len(arguments.defaults)
    required_keyword_only = [
        argument.arg
        for argument, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
        if default is None
    ]
    if required_keyword_only:
        names = ", ".join(required_keyword_only)
        raise ContractViolation(
            f"train needs the keyword argument(s) {names} (line {line}), which the server never passes: "
            f"give them defaults or remove them; {SIGNATURE_HINT}.",
            line,
        )
    if required > 1:
        raise ContractViolation(
            f"train takes {required} arguments (line {line}); the server calls train(data) with one: "
            "give the others defaults or remove them.",
            line,
        )
    if required == 0 and not positional and arguments.vararg is None:
        raise ContractViolation(
            f"train takes no arguments (line {line}); the server calls train(data) with one: write `def train(data):`.",
            line,
        )


def _suspicious(tree: ast.Module, report: ContractReport) -> None:
    """Legal code that will not do what its author hopes in the sandbox, or that looks like cheating."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            _check_import(node, report)
        elif isinstance(node, ast.Call):
            _check_call(node, report)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            lowered = node.value.lower()
            if "test_labels" in lowered or "/private" in lowered:
                report.warn(
                    f"line {node.lineno} mentions the hidden test labels ({node.value[:60]!r}); the sandbox has "
                    "no such file, and trying to read it may get you disqualified."
                )


def _check_import(node: ast.Import | ast.ImportFrom, report: ContractReport) -> None:
    names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
    for name in names:
        if any(name == module or name.startswith(module + ".") for module in NETWORK_MODULES):
            report.warn(
                f"line {node.lineno} imports {name}: the sandbox has no network, so downloads and requests fail."
            )


def _check_call(node: ast.Call, report: ContractReport) -> None:
    function = node.func
    if isinstance(function, ast.Name) and function.id == "input":
        report.warn(f"line {node.lineno} calls input(): nobody can type an answer in the sandbox; it fails at once.")
    elif isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name):
        if (function.value.id, function.attr) in SHELL_CALLS:
            report.warn(
                f"line {node.lineno} runs a shell command ({function.value.id}.{function.attr}): the sandbox has "
                "no network and almost no programs; it will probably fail."
            )
