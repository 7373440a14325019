"""The trainer's modules import one another without a cycle (the stages share ``stages``)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "trainer-image" / "jobplane_trainer"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
    return found


def test_no_module_of_the_trainer_imports_itself_through_another() -> None:
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py")}
    cycles = []

    def walk(node: str, path: list[str]) -> None:
        for dep in sorted(graph.get(node, ())):
            if dep == path[0]:
                cycles.append(" → ".join([*path, dep]))
            elif dep not in path:
                walk(dep, [*path, dep])

    for start in graph:
        walk(start, [start])
    assert cycles == []


def test_the_training_stages_share_their_types_through_stages() -> None:
    for stage in ("encoder_head", "finetune"):
        assert "train" not in _imports(PACKAGE / f"{stage}.py") and "stages" in _imports(PACKAGE / f"{stage}.py")
