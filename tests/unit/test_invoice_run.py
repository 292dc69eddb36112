"""The pure billing run (profiles -> concept -> allocation -> pricing -> invoices): numbers worked
by hand, the Q-1 rules of final runs, the reconciliation, and splitting a period."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastgang.billing import FinalRefused, bill_site_period, compute_period, make_run, reconcile
from lastgang.billing.invoice import Invoice, Run, to_jsonable
from lastgang.concept.load import load_site
from lastgang.concept.model import Site
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.timegrid import period_slots

VIENNA = ZoneInfo("Europe/Vienna")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WHEN = datetime(2024, 7, 2, 9, 0, tzinfo=UTC)

HIGH_WINDOWS = [
    {"days": "Mon-Fri", "from": "07:00", "to": "22:00"},
    {"days": "Sat", "from": "07:00", "to": "13:00"},
]


def slot_at(day: date, hour: int, minute: int = 0) -> int:
    """UTC slot of the quarter hour STARTING at local ``hour:minute`` on ``day``."""
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=VIENNA)
    return int(local.timestamp()) // 900


class Profiles:
    """Stored profiles (as the meters register them) for a period, zero everywhere, L1."""

    def __init__(self, site: Site, first: date, last: date) -> None:
        self.start, self.stop = period_slots(first, last, VIENNA)
        n = self.stop - self.start
        self.data = {
            loc.id: LoadProfile(
                self.start, np.zeros(n), np.zeros(n), np.full(n, Quality.L1, dtype=np.int8)
            )
            for loc in site.locations
        }

    def set(self, location: str, slot: int, imp: float = 0.0, exp: float = 0.0) -> None:
        p = self.data[location]
        p.import_kwh[slot - self.start] = imp
        p.export_kwh[slot - self.start] = exp

    def quality(self, location: str, slots: range | list[int], q: Quality) -> None:
        p = self.data[location]
        for slot in slots:
            p.quality[slot - self.start] = q
            if q is Quality.MISSING:
                p.import_kwh[slot - self.start] = np.nan
                p.export_kwh[slot - self.start] = np.nan


def lines(invoice: Invoice) -> dict[str, tuple[str, str]]:
    """item -> (quantity, amount) as printed (base fees summed per fee are not needed here)."""
    return {line.item: (str(line.quantity), str(line.amount)) for line in invoice.lines}


# --------------------------------------------------------------------------------------------
# the emergency power example (SM-3) for one day, worked by hand


def emergency_day() -> tuple[Site, Profiles]:
    """Saturday 1 June 2024 in examples/emergency-power: three quarter hours with energy, the
    sign table of the example's README (both emergency power meters inverted)."""
    site = load_site(EXAMPLES / "emergency-power" / "site.toml")
    day = date(2024, 6, 1)
    p = Profiles(site, day, day)
    # sunny 10:00-10:15: excl. solar registers 0.5 export (physical import), incl. solar 2.5
    # export: production 2.5 - 0.5 = 2.0; Top 1 1.5, Top 2 1.0; HAK imports 0.5
    sunny = slot_at(day, 10)
    p.set("excl-solar", sunny, exp=0.5)
    p.set("incl-solar", sunny, exp=2.5)
    p.set("apt-1", sunny, imp=1.5)
    p.set("apt-2", sunny, imp=1.0)
    p.set("hak", sunny, imp=0.5)
    # night 02:00-02:15, the unit on standby: production 1.2 - 1.25 = -0.05 (the unit draws)
    night = slot_at(day, 2)
    p.set("excl-solar", night, exp=1.25)
    p.set("incl-solar", night, exp=1.2)
    p.set("apt-1", night, imp=0.7)
    p.set("apt-2", night, imp=0.5)
    p.set("hak", night, imp=1.25)
    # surplus 14:00-14:15: 0.9 flows back through excl. solar to the grid, production
    # 0.6 - (-0.9) = 1.5; Top 1 0.4, heating 0.2; the HAK exports 0.9
    surplus = slot_at(day, 14)
    p.set("excl-solar", surplus, imp=0.9)
    p.set("incl-solar", surplus, exp=0.6)
    p.set("apt-1", surplus, imp=0.4)
    p.set("heating", surplus, imp=0.2)
    p.set("hak", surplus, exp=0.9)
    return site, p


def test_sm_3_emergency_power_day_battery_tariff_worked_by_hand() -> None:
    site, p = emergency_day()
    day = date(2024, 6, 1)
    run = bill_site_period(site, p.data, day, day, created_at=WHEN)
    by_unit = {inv.unit_id: inv for inv in run.invoices}
    assert [inv.unit_id for inv in run.invoices] == ["top-1", "top-2", "general", "heating"]
    assert [inv.number for inv in run.invoices] == [
        f"emergency-power-R1-V1-{k:02d}" for k in range(1, 5)
    ]
    # 10:00: available 2.0 (HAK exports nothing), consumers 2.5: share 80 %
    #   Top 1 1.2 local + 0.3 grid (Saturday 10:00: high), Top 2 0.8 + 0.2 (high)
    # 02:00: production negative, nothing local: Top 1 0.7, Top 2 0.5 grid (low)
    # 14:00: available 1.5 - 0.9 exported at the HAK = 0.6 for 0.6 consumed: share 100 %
    #   Top 1 0.4 local, heating 0.2 local
    top1 = by_unit["top-1"]
    assert lines(top1) == {
        "battery": ("1.600", "0.29"),  # 1.6 x 0.18 = 0.288
        "grid-high": ("0.300", "0.09"),  # 0.3 x 0.29 = 0.087
        "grid-low": ("0.700", "0.16"),  # 0.7 x 0.23 = 0.161
        "base": ("1", "0.15"),  # 4.50 x 1/30
    }
    assert (top1.net, top1.vat_total, top1.total) == (
        Decimal("0.69"),
        Decimal("0.14"),  # 0.69 x 0.20 = 0.138
        Decimal("0.83"),
    )
    assert (top1.consumption_kwh, top1.local_kwh, top1.grid_kwh) == (
        Decimal("2.600"),
        Decimal("1.600"),
        Decimal("1.000"),
    )
    assert top1.local_share_percent == Decimal("61.5")  # 1.6 / 2.6
    top2 = by_unit["top-2"]
    assert lines(top2) == {
        "battery": ("0.800", "0.14"),  # 0.144
        "grid-high": ("0.200", "0.06"),  # 0.058
        "grid-low": ("0.500", "0.12"),  # 0.115 half-up
        "base": ("1", "0.15"),
    }
    assert (top2.net, top2.vat_total, top2.total) == (
        Decimal("0.47"),
        Decimal("0.09"),
        Decimal("0.56"),
    )
    heating = by_unit["heating"]
    assert heating.customer == "Hausverwaltung Lindengasse 12"
    assert heating.vacancy
    assert lines(heating)["battery"] == ("0.200", "0.04")  # 0.036
    assert heating.total == Decimal("0.23")  # 0.19 + 0.038 -> 0.04
    general = by_unit["general"]
    assert general.total == Decimal("0.18")  # base fee 0.15 + 0.03 VAT
    assert run.total == Decimal("0.83") + Decimal("0.56") + Decimal("0.18") + Decimal("0.23")


def test_sm_3_invoice_names_meters_metering_points_and_labels() -> None:
    site, p = emergency_day()
    day = date(2024, 6, 1)
    run = bill_site_period(site, p.data, day, day, created_at=WHEN)
    top1 = run.invoices[0]
    # TOR-4.2: first and last period-end label of the invoice's days
    assert top1.first_label == "2024-06-01 00:15+02:00"
    assert top1.last_label == "2024-06-01 24:00+02:00"
    assert top1.period_label == "2024-06-01 00:15+02:00 – 2024-06-01 24:00+02:00"
    meters = {m.id: m for m in top1.meters}
    assert list(meters) == ["apt-1", "production", "hak"]
    assert meters["apt-1"].physical_meters == ("SMART-ME SM30012011",)
    # TOR-4.1v: the virtual production meter carries its parent's (the HAK's) IDs, dotted
    assert meters["production"].virtual
    assert meters["production"].metering_points == (
        "AT.008100.08010.00000000000005260181",
        "AT.008100.08010.00000000000005260182",
    )
    assert meters["production"].formula == "incl-solar - excl-solar"
    assert meters["apt-1"].quality_slots == {"L1": 96, "L2": 0, "L3": 0, "missing": 0}
    text = " ".join(top1.explanation)
    assert "60 %" in text and "Emergency power unit energy 0.1800 EUR/kWh" in text
    assert "61.5 % of your consumption (1.600 of 2.600 kWh)" in text
    assert top1.quality.statement.startswith("All values used for this invoice were measured")
    # the monthly breakdown of a one-day invoice: one row
    (month,) = top1.months
    assert (month.month, month.consumption_kwh, month.local_kwh, month.grid_kwh) == (
        "2024-06",
        Decimal("2.600"),
        Decimal("1.600"),
        Decimal("1.000"),
    )


def test_sm_3_reconciliation_of_the_emergency_power_day_balances() -> None:
    site, p = emergency_day()
    day = date(2024, 6, 1)
    report = bill_site_period(site, p.data, day, day, created_at=WHEN).reconciliation
    assert report.grid_meters == ("hak",)
    assert report.consumer_meters == ("apt-1", "apt-2", "general", "heating")
    assert report.production_meters == ("production",)
    (row,) = report.rows
    # HAK 0.5 + 1.25 import, 0.9 export; consumers 2.5 + 1.2 + 0.6 = 4.3;
    # production 2.0 - 0.05 + 1.5 = 3.45: 4.3 - 3.45 = 0.85 = 1.75 - 0.9
    assert (row.grid_import_kwh, row.grid_export_kwh, row.grid_net_kwh) == (
        Decimal("1.750"),
        Decimal("0.900"),
        Decimal("0.850"),
    )
    assert (row.consumers_kwh, row.production_kwh, row.expected_net_kwh) == (
        Decimal("4.300"),
        Decimal("3.450"),
        Decimal("0.850"),
    )
    assert row.difference_kwh == Decimal("0.000")
    assert not row.flagged


# --------------------------------------------------------------------------------------------
# reconciliation threshold


def small_site(**billing: Any) -> Site:
    return Site.model_validate(
        {
            "site": {"id": "small", "timezone": "Europe/Vienna"},
            "locations": [
                {"id": "hak", "role": "grid"},
                {"id": "top1", "role": "consumer"},
                {"id": "pv", "role": "production"},
            ],
            "units": [
                {"id": "u1", "name": "Top 1", "meters": ["top1"]},
                {"id": "roof", "kind": "commercial", "meters": ["pv"]},
            ],
            "tariffs": [
                {"id": "solar", "kind": "local", "meter": "pv", "price": "0.12"},
                {"id": "high", "kind": "grid", "price": "0.30", "windows": HIGH_WINDOWS},
                {"id": "low", "kind": "grid", "price": "0.20"},
                {"id": "feed", "kind": "feed-in", "meter": "pv", "price": "0.08", "vat": "0"},
            ],
            "contracts": [{"unit": "u1", "customer": "Anna Berger", "start": "2024-01-01"}],
            "billing": {"owner": "Owner", **billing},
        }
    )


@pytest.mark.parametrize(
    ("hak_per_slot", "threshold", "percent", "flagged"),
    [
        (1.02, Decimal("1"), Decimal("2.0"), True),
        (1.005, Decimal("1"), Decimal("0.5"), False),
        (0.98, Decimal("1"), Decimal("-2.0"), True),
        (1.02, Decimal("3"), Decimal("2.0"), False),
    ],
)
def test_reconciliation_flags_a_difference_above_the_threshold(
    hak_per_slot: float, threshold: Decimal, percent: Decimal, flagged: bool
) -> None:
    site = small_site()
    day = date(2024, 3, 5)
    p = Profiles(site, day, day)
    for slot in range(p.start, p.stop):
        p.set("top1", slot, imp=1.0)
        p.set("hak", slot, imp=hak_per_slot)
    result = compute_period(site, p.data, day, day)
    (row,) = reconcile(result, threshold).rows
    # 96 quarter hours: consumers 96 kWh, the HAK 96 x 1.02 = 97.92: 1.92 kWh = 2.0 %
    assert row.consumers_kwh == Decimal("96.000")
    assert row.difference_percent == percent
    assert row.flagged is flagged


def test_reconciliation_is_per_month() -> None:
    site = small_site()
    first, last = date(2024, 1, 31), date(2024, 2, 1)
    p = Profiles(site, first, last)
    jan = range(*period_slots(first, first, VIENNA))
    feb = range(*period_slots(last, last, VIENNA))
    for slot in jan:
        p.set("top1", slot, imp=1.0)
        p.set("hak", slot, imp=1.0)
    for slot in feb:
        p.set("top1", slot, imp=1.0)
        p.set("hak", slot, imp=1.03)
    report = reconcile(compute_period(site, p.data, first, last))
    assert [(r.month, r.first_day, r.last_day, r.flagged) for r in report.rows] == [
        ("2024-01", first, first, False),
        ("2024-02", last, last, True),
    ]
    assert report.rows[1].difference_percent == Decimal("3.0")


# --------------------------------------------------------------------------------------------
# drafts, finals, substitute energy


def test_q_1_final_run_refused_with_l3_and_missing_values_named() -> None:
    site = small_site()
    day = date(2024, 3, 5)
    p = Profiles(site, day, day)
    for slot in range(p.start, p.stop):
        p.set("top1", slot, imp=0.4)
        p.set("hak", slot, imp=0.4)
    p.quality("top1", range(slot_at(day, 10), slot_at(day, 11)), Quality.L3)
    p.quality("pv", range(slot_at(day, 23), slot_at(day, 23, 30)), Quality.MISSING)
    result = compute_period(site, p.data, day, day)
    with pytest.raises(FinalRefused) as caught:
        make_run(result, status="final", created_at=WHEN)
    problems = caught.value.problems
    assert [p.meter for p in problems] == ["top1", "pv"]
    assert "4 quarter hour(s) with L3" in problems[0].reason
    assert problems[0].time == "2024-03-05 10:15+01:00 – 2024-03-05 11:00+01:00"
    assert "2 quarter hour(s) without a value" in problems[1].reason
    assert problems[1].time == "2024-03-05 23:15+01:00 – 2024-03-05 23:30+01:00"
    # the same period as a draft: L3 energy stated, missing values counted as 0
    run = make_run(result, created_at=WHEN)
    top1 = run.invoices[0]
    assert top1.draft
    assert top1.quality.l3_kwh == Decimal("1.600")  # 4 quarter hours x 0.4 kWh
    assert top1.quality.substitute_kwh == Decimal("1.600")
    assert top1.quality.missing_slots == 2  # the PV decides the split there
    assert "1.600 kWh provisional (L3" in top1.quality.statement
    assert [i.location for i in run.quality_issues] == ["top1", "pv"]


def test_q_1_l2_values_are_billable_and_stated() -> None:
    site = small_site()
    day = date(2024, 3, 5)
    p = Profiles(site, day, day)
    for slot in range(p.start, p.stop):
        p.set("top1", slot, imp=0.5)
    p.quality("top1", range(slot_at(day, 0), slot_at(day, 2)), Quality.L2)
    run = bill_site_period(site, p.data, day, day, status="final", created_at=WHEN)
    top1 = run.invoices[0]
    assert top1.status == "final" and not top1.draft
    assert (top1.quality.substitute_kwh, top1.quality.l2_kwh, top1.quality.l3_kwh) == (
        Decimal("4.000"),  # 8 quarter hours x 0.5 kWh
        Decimal("4.000"),
        Decimal("0.000"),
    )


def test_q_1_a_pv_substitute_marks_every_consumer_only_while_it_produces() -> None:
    site = small_site()
    day = date(2024, 3, 5)
    p = Profiles(site, day, day)
    for slot in range(p.start, p.stop):
        p.set("top1", slot, imp=0.25)
    noon = slot_at(day, 12)
    p.set("pv", noon, exp=0.1)
    p.quality("pv", [noon, noon + 1], Quality.L2)  # 12:15 produces nothing
    (top1, roof) = bill_site_period(site, p.data, day, day, created_at=WHEN).invoices
    assert top1.quality.l2_kwh == Decimal("0.500")  # both quarter hours: the PV decides
    assert roof.quality.energy_kwh == Decimal("0.100")  # the producer's energy: its production
    assert roof.quality.l2_kwh == Decimal("0.100")


# --------------------------------------------------------------------------------------------
# provenance and JSON


def test_run_json_has_decimals_as_strings_and_batches_per_metering_point() -> None:
    site = small_site()
    day = date(2024, 3, 5)
    p = Profiles(site, day, day)
    p.data["top1"].batch[:10] = 7
    p.data["top1"].batch[10:] = 9
    for slot in range(p.start, p.stop):
        p.set("top1", slot, imp=0.3)
    run = bill_site_period(site, p.data, day, day, run=5, version=2, created_at=WHEN)
    data = json.loads(json.dumps(to_jsonable(run)))
    assert data["run"] == 5 and data["version"] == 2 and data["status"] == "draft"
    assert data["invoices"][0]["number"] == "small-R5-V2-01"
    assert data["total"] == str(run.total)
    line = data["invoices"][0]["lines"][0]
    assert isinstance(line["quantity"], str) and isinstance(line["amount"], str)
    assert isinstance(line["energy_kwh"], float)
    assert {"location": "top1", "metering_points": [], "batches": [7, 9]} in data["batches"]
    assert data["invoices"][0]["meters"][0]["batches"] == [7, 9]
    assert [b["batch"] for b in data["inputs"]["batches"]] == [7, 9]
    assert len(data["fingerprint"]) == 64
    # the same inputs give the same fingerprint; other values another
    again = bill_site_period(site, p.data, day, day, created_at=WHEN)
    assert again.fingerprint == run.fingerprint
    p.set("top1", p.start, imp=0.31)
    assert bill_site_period(site, p.data, day, day, created_at=WHEN).fingerprint != run.fingerprint


# --------------------------------------------------------------------------------------------
# splitting a period (DESIGN.md: billing both halves gives the energy of the whole)


def _energy(runs: list[Run]) -> dict[tuple[str, str, str], float]:
    out: dict[tuple[str, str, str], float] = {}
    for run in runs:
        for invoice in run.invoices:
            for line in invoice.lines:
                if line.energy_kwh is not None:
                    key = (invoice.unit_id, line.kind, line.item)
                    out[key] = out.get(key, 0.0) + line.energy_kwh
    return out


@given(
    seed=st.integers(0, 2**32 - 1),
    days=st.integers(2, 5),
    data=st.data(),
)
def test_billing_two_halves_gives_the_energy_of_billing_the_whole(
    seed: int, days: int, data: st.DataObject
) -> None:
    site = small_site(balance_meter="hak")
    first = date(2024, 10, 25)  # across the autumn clock change (a 100-quarter-hour day)
    last = first + timedelta(days=days - 1)
    cut = data.draw(st.integers(1, days - 1))
    p = Profiles(site, first, last)
    rng = np.random.default_rng(seed)
    n = p.stop - p.start
    p.data["top1"].import_kwh[:] = rng.uniform(0, 1, n)
    p.data["pv"].export_kwh[:] = rng.uniform(0, 1.5, n) * (rng.random(n) < 0.5)
    p.data["hak"].export_kwh[:] = rng.uniform(0, 0.3, n)
    whole = bill_site_period(site, p.data, first, last, created_at=WHEN)
    middle = first + timedelta(days=cut)
    halves = [
        bill_site_period(site, p.data, first, middle - timedelta(days=1), created_at=WHEN),
        bill_site_period(site, p.data, middle, last, created_at=WHEN),
    ]
    a, b = _energy([whole]), _energy(halves)
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert b[key] == pytest.approx(value, rel=1e-12, abs=1e-9)
    rec_whole = sum(r.consumers_kwh for r in whole.reconciliation.rows)
    assert float(rec_whole) == pytest.approx(float(p.data["top1"].import_kwh.sum()), abs=0.003)
