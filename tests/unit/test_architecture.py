"""The pure core imports no I/O module (DESIGN.md: pure core, thin edges)."""

import ast
from pathlib import Path

import lastgang

CORE = ["ids", "obis", "timegrid", "quality", "profiles", "concept", "allocation", "pricing"]
EDGE_PREFIXES = (
    "lastgang.store",
    "lastgang.ingest",
    "lastgang.cli",
    "lastgang.report",
    "lastgang.api",
    "lastgang.services",
)
IO_MODULES = {"duckdb", "typer", "rich", "fastapi", "uvicorn", "sqlite3", "requests", "httpx"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_modules_import_no_io_module() -> None:
    root = Path(lastgang.__file__).parent
    checked = 0
    for name in CORE:
        paths = [root / f"{name}.py"] if (root / f"{name}.py").exists() else []
        if (root / name).is_dir():
            paths = sorted((root / name).rglob("*.py"))
        for path in paths:
            checked += 1
            for imported in _imports(path):
                assert not imported.startswith(EDGE_PREFIXES), f"{path} imports {imported}"
                assert imported.split(".")[0] not in IO_MODULES, f"{path} imports {imported}"
    assert checked >= 5
