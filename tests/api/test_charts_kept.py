"""Charts are kept by the site's change stamp: the next request for a view is answered from
what the first made, and an import makes the view again with the new values."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
from fastapi.testclient import TestClient  # noqa: E402

from lastgang.api.accounts import Scope  # noqa: E402
from lastgang.api.app import create_app  # noqa: E402
from lastgang.store.duckdb_store import DuckDBStore  # noqa: E402

from .conftest import SITE_TOML, wait_job  # noqa: E402
from .webdata import FIRST_DAY, SITE, interval_csv  # noqa: E402

MONTH = f"/api/v1/sites/{SITE}/units/top1/charts/consumption?view=month&date={FIRST_DAY}"
MONITORING = f"/api/v1/sites/{SITE}/charts/monitoring?view=month&date={FIRST_DAY}"


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the profile reads of every store connection of the application."""
    calls: list[int] = []
    read = DuckDBStore.load_profiles

    def counted(self: DuckDBStore, *args: object, **kwargs: object) -> object:
        calls.append(1)
        return read(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(DuckDBStore, "load_profiles", counted)
    return calls


def test_a_view_is_made_once_for_every_unit_and_again_after_an_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lastgang.services import apply_site, import_bytes

    path = tmp_path / "charts.duckdb"
    with DuckDBStore(path) as store:
        apply_site(store, SITE_TOML)
        import_bytes(store, SITE, interval_csv(days=1), "day1.csv")
    app = create_app(path, login_limit=10_000)
    with TestClient(app, follow_redirects=False) as client:
        accounts = app.state.lastgang.accounts
        read, _ = accounts.create_token(SITE, Scope.READ_ONLY)
        operator, _ = accounts.create_token(SITE, Scope.OPERATOR)
        h = {"Authorization": f"Bearer {read}"}
        reads = _reads(monkeypatch)

        first = client.get(MONTH, headers=h).json()
        assert reads and first["totals"]["consumption_kwh"] == pytest.approx(96 * 0.2)
        made = len(reads)
        # the same view again, another unit's, and the monitoring chart's second request: no
        # profile is read again
        assert client.get(MONTH, headers=h).json() == first
        top2 = client.get(MONTH.replace("top1", "top2"), headers=h).json()
        assert top2["totals"]["consumption_kwh"] == pytest.approx(96 * 0.1)
        assert len(reads) == made
        monitoring = client.get(MONITORING, headers=h).json()
        assert client.get(MONITORING, headers=h).json() == monitoring
        made = len(reads)

        # the next day and Top 1's first day corrected (0.3 kWh a quarter hour): made again
        r = client.post(
            f"/api/v1/sites/{SITE}/imports",
            files=[("files", ("days.csv", interval_csv(days=2, top1=0.3), "text/csv"))],
            headers={"Authorization": f"Bearer {operator}"},
        )
        assert r.status_code == 202, r.text
        job = wait_job(client, r.json()[0]["href"], {"Authorization": f"Bearer {operator}"})
        assert job["state"] == "done", str(job)[:2000]
        after = client.get(MONTH, headers=h).json()
        assert after["totals"]["consumption_kwh"] == pytest.approx(2 * 96 * 0.3)
        assert len(reads) > made
        series = {s["kind"]: s["values"] for s in after["series"]}
        # 4 and 5 March (the fourth and fifth bar) imported, the days around them not
        used = [a + b for a, b in zip(series["local"][3:5], series["grid"][3:5], strict=True)]
        assert used == pytest.approx([96 * 0.3, 96 * 0.3])
        assert series["local"][2] is None and series["local"][5] is None
        changed = client.get(MONITORING, headers=h).json()
        assert changed != monitoring
