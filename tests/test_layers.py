"""The import floors of the design: core <- api (the HTTP contract) <- stages (never each other) <- app
(wiring), with the client on the api, and the demo on the client; and
inside the core: storage <- the domains (models, labels, history; access on models) <- evaluation
<- state. Also:
only the edges read the environment; everything else gets its settings passed in."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "embedloop"
STAGES = {"service", "monitoring", "retrain", "reindex"}
ALLOWED = {
    "core": {"core"},
    "api": {"core", "api"},
    "service": {"core", "api", "service"},
    "monitoring": {"core", "monitoring"},
    "retrain": {"core", "retrain"},
    "reindex": {"core", "reindex"},
    "app": {"core", "api", "client", "app", *STAGES},
    "client": {"core", "api", "client"},
    "demo": {"core", "api", "client", "demo"},
}
CORE_MODULES = {"settings", "env", "cpu", "progress", "validation"}  # import no core subpackage
CORE_ALLOWED = {
    "storage": {"storage"},
    "models": {"storage", "models", *CORE_MODULES},
    "labels": {"storage", "labels", *CORE_MODULES},
    "history": {"storage", "history", *CORE_MODULES},
    "access": {"storage", "models", "access", *CORE_MODULES},  # keys live beside the registry and its audit log
    "evaluation": {"models", "labels", "evaluation", *CORE_MODULES},
    **{module: CORE_MODULES for module in CORE_MODULES},
}
# Where the environment may be read: the edges that build the settings, and process start-up defaults.
READS_ENVIRONMENT = {"core/settings.py", "core/env.py", "app/cli/common.py", "demo/story.py"}


def imported(path: Path, level: int) -> set[str]:
    """The ``embedloop.<a>.<b>`` parts at ``level`` (1: a, 2: b) that ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        for name in names:
            parts = name.split(".")
            if parts[0] == "embedloop" and len(parts) > level:
                if level == 1 or parts[1] == "core":
                    found.add(parts[level])
    return found


@pytest.mark.parametrize("floor", sorted(ALLOWED))
def test_imports_only_go_downwards(floor):
    for path in (PACKAGE / floor).rglob("*.py"):
        wrong = imported(path, 1) - ALLOWED[floor]
        assert not wrong, f"{path.relative_to(PACKAGE)} imports {wrong}"


@pytest.mark.parametrize("part", sorted(CORE_ALLOWED))
def test_core_domains_build_on_storage_not_on_each_other(part):
    paths = [PACKAGE / "core" / f"{part}.py"] if part in CORE_MODULES else (PACKAGE / "core" / part).rglob("*.py")
    for path in paths:
        wrong = imported(path, 2) - CORE_ALLOWED[part]
        assert not wrong, f"{path.relative_to(PACKAGE)} imports core.{wrong}"


def test_only_the_edges_read_the_environment():
    readers = {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
               if "os.environ" in path.read_text() or "getenv" in path.read_text()}
    assert readers <= READS_ENVIRONMENT, readers - READS_ENVIRONMENT
