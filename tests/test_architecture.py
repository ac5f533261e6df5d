"""The package's shape: no import cycle between rmlc's modules, lazy imports included."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"


def _module_graph() -> dict[str, set[str]]:
    """rmlc module -> the rmlc modules it imports anywhere (functions included); importing a
    submodule also imports its parent packages (except the importer's own)."""
    modules = {}
    for path in (SOURCE / "rmlc").rglob("*.py"):
        name = ".".join(path.relative_to(SOURCE).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rmlc"):
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    graph[name].add(target if target in modules else node.module)
            elif isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name.startswith("rmlc")}
    for name in list(graph):
        for target in list(graph[name]):
            parts = target.split(".")
            for i in range(1, len(parts)):
                parent = ".".join(parts[:i])
                if parent in modules and not name.startswith(parent + ".") and parent != name:
                    graph[name].add(parent)
    return {name: {t for t in targets if t in modules} for name, targets in graph.items()}


def test_no_import_cycles() -> None:
    graph = _module_graph()
    cycles, done = [], set()

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            cycles.append([*stack[stack.index(node) :], node])
            return
        if node in done:
            return
        for target in sorted(graph.get(node, ())):
            visit(target, [*stack, node])
        done.add(node)

    for module in sorted(graph):
        visit(module, [])
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)
    assert "rmlc.train.launch" in graph["rmlc.train"]  # the graph is not empty by mistake


def _direct_writes() -> list[str]:
    """``module:line`` of each call that writes a file in place: ``write_text``,
    ``write_bytes``, or ``open`` with a mode that writes."""
    found = []
    for path in (SOURCE / "rmlc").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            name = node.func.attr
            modes = [a.value for a in node.args if isinstance(a, ast.Constant)]
            modes += [
                k.value.value
                for k in node.keywords
                if k.arg == "mode" and isinstance(k.value, ast.Constant)
            ]
            writes = name in ("write_text", "write_bytes") or (
                name == "open" and any(isinstance(m, str) and set(m) & set("wax") for m in modes)
            )
            if writes:
                found.append(f"{path.relative_to(SOURCE)}:{node.lineno}")
    return found


def test_results_are_written_through_rmlc_atomic() -> None:
    """Every file rmlc writes goes through ``rmlc.atomic`` (a temporary file renamed into
    place), so that a crash or a full disk never leaves a half-written result. Exceptions:
    appended run logs (``log.csv``, runs files: a row at a time) and the image cache's
    scratch folder, which is renamed into place whole."""
    allowed = {
        "rmlc/train/image_cache.py",  # a scratch folder, renamed whole
        "rmlc/experiments/runs.py",  # the runs file: rows appended as runs finish
        "rmlc/train/run_log.py",  # log.csv and train.log: rows appended as training runs
    }
    unexpected = [w for w in _direct_writes() if w.split(":")[0] not in allowed]
    assert unexpected == [], f"files written in place (use rmlc.atomic): {unexpected}"


MAX_FUNCTION_LINES = 60
# Compiled kernels are exempt (one compiled body is one launch): decorator -> its module.
KERNEL_DECORATORS = {
    "compiled": "rmlc/losses/fused.py",  # numba, rmlc.losses.fused.compiled
    "triton.jit": "rmlc/losses/fused_triton.py",  # Triton
}


def _decorator_name(decorator: ast.expr) -> str:
    """``compiled`` for ``@compiled(...)``, ``triton.jit`` for ``@triton.jit``."""
    return ast.unparse(decorator.func if isinstance(decorator, ast.Call) else decorator)


def _body_length(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement after the docstring to the end of the function."""
    body = function.body
    if (
        isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]
    return body[-1].end_lineno - body[0].lineno + 1 if body else 0


def test_no_long_functions() -> None:
    """No function outside the compiled kernels runs over 60 lines."""
    long, exempt = [], set()
    for path in sorted((SOURCE / "rmlc").rglob("*.py")):
        module = path.relative_to(SOURCE).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if any(
                KERNEL_DECORATORS.get(_decorator_name(decorator)) == module
                for decorator in node.decorator_list
            ):
                exempt.add(f"{module}:{node.name}")
                continue
            length = _body_length(node)
            if length > MAX_FUNCTION_LINES:
                long.append(f"{module}:{node.lineno} {node.name} ({length} lines)")
    assert "rmlc/losses/fused_triton.py:_ranking_kernel" in exempt  # kernels are recognised
    assert "rmlc/losses/fused.py:_fused_loop" in exempt
    assert long == [], f"functions over {MAX_FUNCTION_LINES} lines: {long}"


# The layers of docs/design.md, lowest first: a module imports only from lower layers (the
# foundations also from one another).
LAYERS = [
    {"rmlc.labels", "rmlc.checks", "rmlc.atomic", "rmlc.torch_files", "rmlc.gather"}
    | {"rmlc.provenance"},
    {"rmlc.data", "rmlc.losses", "rmlc.metrics", "rmlc.propagation", "rmlc.models"}
    | {"rmlc.thresholds", "rmlc.audit"},
    {"rmlc.train", "rmlc.linear"},
    {"rmlc.experiments", "rmlc.inference", "rmlc.pretrain", "rmlc.export"},
    {"rmlc.cli", "rmlc"},
    {"rmlc.__main__"},  # python -m rmlc: the command line
]


def test_each_layer_imports_only_from_the_layers_below() -> None:
    layer_of = {group: depth for depth, groups in enumerate(LAYERS) for group in groups}

    def group(module: str) -> str:
        return ".".join(module.split(".")[:2])

    graph = _module_graph()
    assert {group(module) for module in graph} <= set(layer_of), "a module outside the layers"
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        for target in targets
        if group(target) != group(module)
        and layer_of[group(target)] >= layer_of[group(module)]
        and not layer_of[group(module)] == layer_of[group(target)] == 0
    )
    assert upward == [], upward


MAX_MODULE_LINES = 650
MAX_CLASS_LINES = 400
# The compiled kernels are exempt (a Triton kernel is one launch); C/C++ extension sources
# are not Python modules and are not counted.
SIZE_EXEMPT = {"rmlc/losses/fused_triton.py"}


def test_no_long_modules_or_classes() -> None:
    """No module under src/rmlc over 650 lines, no class over 400, outside the kernels."""
    long = []
    for path in sorted((SOURCE / "rmlc").rglob("*.py")):
        module = path.relative_to(SOURCE).as_posix()
        if module in SIZE_EXEMPT:
            continue
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long.append(f"{module} ({len(text.splitlines())} lines)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = node.end_lineno - first + 1
                if length > MAX_CLASS_LINES:
                    long.append(f"{module}:{node.lineno} class {node.name} ({length} lines)")
    assert all((SOURCE / module).is_file() for module in SIZE_EXEMPT)  # real files
    assert long == [], (
        f"over {MAX_MODULE_LINES} lines a module or {MAX_CLASS_LINES} a class: {long}"
    )
