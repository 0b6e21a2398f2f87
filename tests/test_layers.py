"""The layering as import contracts: no cycles, imports point down, interfaces import no implementation.

Every import counts, lazy ones inside functions too: a lazy import that runs back up the layers is
still a dependency a reader has to follow. docs/architecture.md draws the same layers.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. A module may import modules of its own layer (no cycles) and of the layers below.
LAYERS: list[tuple[str, ...]] = [
    ("aiqa.errors", "aiqa.records", "aiqa.laps"),
    ("aiqa.config", "aiqa"),
    ("aiqa.text",),
    ("aiqa.ingest",),
    ("aiqa.chunk",),
    ("aiqa.embedders",),
    ("aiqa.index",),
    ("aiqa.stores",),
    ("aiqa.build", "aiqa.retrieve"),
    ("aiqa.answer",),
    ("aiqa.generate",),
    ("aiqa.pipeline",),
    ("aiqa.engine",),
    ("aiqa.contract", "aiqa.evaluate", "aiqa.calibrate", "aiqa.feedback", "aiqa.report"),
    ("aiqa.web",),
    ("aiqa.cli",),
]
# Interface modules: they import nothing of the implementations in their package.
INTERFACES = ("aiqa.embedders.base", "aiqa.stores.base")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / "aiqa").rglob("*.py"))}


def imports(name: str) -> set[str]:
    """The aiqa modules `name` imports, each resolved to a module of the tree."""
    known = modules()
    path = known[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from aiqa.x import y`: y is a module when the tree has aiqa.x.y, else a name in aiqa.x.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("aiqa") and target != name:
                found.add(target)
    return found


def layer_of(name: str) -> int | None:
    best: tuple[int, int] | None = None  # (length of the matching prefix, layer)
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            # "aiqa" stands for the package's __init__ only, not for everything below it.
            inside = name.startswith(prefix + ".") and prefix != "aiqa"
            if (name == prefix or inside) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), i)
    return None if best is None else best[1]


def test_every_module_has_a_layer():
    unplaced = [name for name in modules() if layer_of(name) is None]
    assert not unplaced, f"modules in no layer of LAYERS (place them, and in docs/architecture.md): {unplaced}"


def test_imports_point_down_the_layers():
    upward = []
    for name in modules():
        mine = layer_of(name)
        for target in sorted(imports(name)):
            theirs = layer_of(target)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{name} (layer {mine}) imports {target} (layer {theirs})")
    assert not upward, "imports that run back up the layers:\n" + "\n".join(upward)


def test_no_import_cycles():
    graph = {name: imports(name) for name in modules()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_interfaces_import_no_implementation():
    leaks = []
    for interface in INTERFACES:
        assert interface in modules(), f"{interface} is missing: the interface of its backends lives there"
        package = interface.rpartition(".")[0]
        leaks += [f"{interface} imports {t}" for t in imports(interface) if t.startswith(package + ".")]
    assert not leaks, "an interface imports an implementation:\n" + "\n".join(leaks)


def test_the_contract_checker_sees_imports():
    """The checker itself: it must find a known import, or every contract above passes vacuously."""
    assert "aiqa.config" in imports("aiqa.cli")
    assert layer_of("aiqa.web.server") > layer_of("aiqa.records")
