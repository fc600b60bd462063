"""The layout holds: small modules and functions, no import cycle, layers that only point one way."""

from __future__ import annotations

import code_layout as layout
import pytest

GRAPH = layout.import_graph()


def test_no_module_is_over_the_limit():
    over = {
        layout.relative(path): layout.line_count(path)
        for path in layout.modules().values()
        if layout.line_count(path) > layout.MAX_MODULE_LINES and layout.relative(path) not in layout.MODULE_EXCEPTIONS
    }
    assert over == {}, f"split these modules (limit {layout.MAX_MODULE_LINES} lines): {over}"


def test_no_function_is_over_the_limit():
    over = [
        f"{function.module}:{function.line} {function.name} ({function.lines} lines)"
        for path in layout.modules().values()
        for function in layout.functions(path)
        if function.lines > layout.MAX_FUNCTION_LINES
        and not function.module.startswith(layout.FUNCTION_EXCEPTION_FOLDERS)
    ]
    assert over == [], f"split these functions (limit {layout.MAX_FUNCTION_LINES} lines): {over}"


def test_the_import_graph_has_no_cycle():
    assert layout.cycles(GRAPH) == []


def test_grader_never_imports_server():
    wrong = {name: sorted(t for t in targets if t.startswith("server")) for name, targets in GRAPH.items()}
    assert {name: targets for name, targets in wrong.items() if name.startswith("grader") and targets} == {}


def test_blueprints_do_not_import_each_other():
    views = {name for name in GRAPH if name.startswith("server.views.")}
    wrong = {name: sorted(GRAPH[name] & views) for name in views if GRAPH[name] & views}
    assert wrong == {}, "shared helpers belong in a module outside server/views/"


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"p": {"p.x"}, "p.x": {"p"}}, [["p", "p.x"]]),  # a module importing the package that imports it
        ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["a", "b"], ["c", "d"]]),
    ],
)
def test_cycles_are_found(edges, expected):
    assert sorted(layout.cycles(edges)) == expected
