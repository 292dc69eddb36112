"""Fixtures of the integration tests: what an import or a rebuild reads and writes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from lastgang import services
from lastgang.services import RebuildResult, apply_site_text, rebuild_profiles
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


#: ``apply(make_store, site_id, text, when)``: see :func:`against_whole`
AgainstWhole = Callable[
    [Callable[[], DuckDBStore], str, str, datetime], tuple[DuckDBStore, RebuildResult, set[str]]
]


@pytest.fixture
def against_whole(
    parsed: list[str], profiles_saved: Callable[[DuckDBStore], set[str]]
) -> AgainstWhole:
    """``apply(make_store, site_id, text, when)``: the site configuration ``text`` applied to
    a store made by ``make_store`` (its rebuild as ``site apply`` makes it), checked against a
    second such store given ``text`` without a rebuild and then rebuilt whole: both must hold
    the same rows in every table. Returns the store, its rebuild and the locations whose
    profiles it saved; ``parsed`` then lists the inputs that rebuild read again."""

    def apply(
        make_store: Callable[[], DuckDBStore], site_id: str, text: str, when: datetime
    ) -> tuple[DuckDBStore, RebuildResult, set[str]]:
        whole = make_store()
        apply_site_text(whole, text, "changed.toml", now=when, rebuild=False)
        rebuild_profiles(whole, site_id, now=when)
        store = make_store()
        built = profiles_saved(store)
        parsed.clear()
        result = apply_site_text(store, text, "changed.toml", now=when)
        assert result.rebuilt is not None
        assert store.fingerprint(site_id) == whole.fingerprint(site_id)
        return store, result.rebuilt, built

    return apply
