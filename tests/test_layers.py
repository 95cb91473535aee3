"""The import floors of the design: core <- stages (never each other) <- app (wiring)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "embedloop"
STAGES = {"service", "monitoring", "retrain"}
ALLOWED = {
    "core": {"core"},
    "service": {"core", "service"},
    "monitoring": {"core", "monitoring"},
    "retrain": {"core", "retrain"},
    "app": {"core", "app", *STAGES},
}


def imported_subpackages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        for name in names:
            parts = name.split(".")
            if parts[0] == "embedloop" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("floor", sorted(ALLOWED))
def test_imports_only_go_downwards(floor):
    for path in (PACKAGE / floor).rglob("*.py"):
        wrong = imported_subpackages(path) - ALLOWED[floor]
        assert not wrong, f"{path.relative_to(PACKAGE)} imports {wrong}"
