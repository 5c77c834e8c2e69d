"""The layering of `sim`: no import cycle among its modules, no import of another module's
private names.

The data flow reads in the imports: scenario YAML (`yaml_source`) -> validated config
(`schema`, `scenario`) -> model -> recorded data -> result files -> plots and analysis. A
cycle means two layers each need the other; a function-level import that only dodges one
still counts here, so the graph counts imports wherever they stand in a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sim

SIM_DIR = Path(sim.__file__).resolve().parent


def _module_names() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the `sim` package (packages by __init__)."""
    names = {}
    for path in sorted(SIM_DIR.rglob("*.py")):
        parts = list(path.relative_to(SIM_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def import_graph() -> tuple[dict[str, dict[str, int]], list[tuple[str, int, str]]]:
    """(graph, private imports) of `sim`.

    graph: importing module -> {imported `sim` module: line of the first such import}, for
    imports at module level and inside functions alike (`ast.walk` sees both); `from sim.x
    import y` counts as importing `sim.x.y` where that is a module, else `sim.x`; relative
    imports are resolved.
    private imports: (module, line, "sim.x._name") for every `from sim.x import _name`.
    """
    modules = _module_names()
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    private = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = _package_of(name, path).split(".")
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in modules else base)
                    if alias.name.startswith("_") and base.split(".")[0] == "sim":
                        private.append((name, node.lineno, full))
            for target in targets:
                if target in modules and target != name:
                    graph[name].setdefault(target, node.lineno)
    return graph, private


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None when the graph is acyclic (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_sees_module_and_function_level_imports():
    graph, _ = import_graph()
    assert "sim.schema" in graph["sim.model"]  # module level
    assert "sim.explorer.server" in graph["sim.explorer"]  # inside a function
    assert "sim.sweep" in graph["sim.calibration"]


def test_find_cycle_reports_the_cycle():
    assert find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": 1}, "b": {}}) is None


def test_sim_modules_import_no_cycle():
    graph, _ = import_graph()
    cycle = find_cycle(graph)
    if cycle:
        steps = [f"{a} imports {b} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:])]
        raise AssertionError("import cycle among sim modules:\n  " + "\n  ".join(steps))


def test_no_module_imports_private_names():
    _, private = import_graph()
    assert not private, "private names imported across modules:\n" + "\n".join(
        f"  {module}:{line}: {name}" for module, line, name in private
    )


def test_data_flow_layers_point_one_way():
    """The early layers never import the later ones (even inside a function)."""
    graph, _ = import_graph()
    later = {"sim.engine", "sim.model", "sim.runner", "sim.tables", "sim.results", "sim.plots", "sim.analysis"}
    later |= {"sim.sweep", "sim.calibration"}
    for early in ("sim.keypath", "sim.yaml_source", "sim.schema", "sim.scenario"):
        assert not later & set(graph[early]), (early, sorted(later & set(graph[early])))
    assert not {"sim.plots", "sim.analysis", "sim.patterns"} & set(graph["sim.results"])


def test_the_rules_know_nothing_of_mesa_recording_or_output():
    """The world state and the process modules depend only on the config layers and each other
    (and on `sim.compiled`, numba's set-up), so a rule can be read, tested and changed without
    the Mesa model, the recorders or the files."""
    graph, _ = import_graph()
    rule_modules = [m for m in graph if m == "sim.world" or m.startswith("sim.processes")]
    assert "sim.processes.conflict" in rule_modules
    allowed = {"sim.schema", "sim.geography", "sim.world", "sim.processes", "sim.compiled"}
    for module in rule_modules:
        outside = sorted(m for m in graph[module] if m not in allowed and not m.startswith("sim.processes."))
        assert not outside, f"{module} imports {outside}"
    assert not [m for m in graph["sim.compiled"] if m.startswith("sim")]  # a tool, with no project imports
