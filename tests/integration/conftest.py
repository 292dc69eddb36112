"""Fixtures of the integration tests: what an import or a rebuild reads and writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lastgang import services
from lastgang.store.duckdb_store import DuckDBStore


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the inputs parsed from here on, in order (every parse goes through
    ``services._parse``): the file name of each source."""
    names: list[str] = []
    parse = services._parse

    def counting(content: bytes, source: str, *args: Any, **kwargs: Any) -> Any:
        names.append(Path(source).name)
        return parse(content, source, *args, **kwargs)

    monkeypatch.setattr(services, "_parse", counting)
    return names


@pytest.fixture
def profiles_saved(monkeypatch: pytest.MonkeyPatch) -> Callable[[DuckDBStore], set[str]]:
    """``watch(store)``: the locations whose profiles ``store`` saves from here on."""

    def watch(store: DuckDBStore) -> set[str]:
        built: set[str] = set()
        save_profiles = store.save_profiles

        def saving(site_id: str, profiles: Any, *args: Any, **kwargs: Any) -> int:
            built.update(profiles)
            return save_profiles(site_id, profiles, *args, **kwargs)

        monkeypatch.setattr(store, "save_profiles", saving)
        return built

    return watch
