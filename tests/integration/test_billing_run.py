"""A small site billed through the whole path: site applied to the store, 15-minute values
imported as CSV, billed, invoice JSON written and the run stored. Numbers worked by hand (SM-5,
SM-6: tenant change mid-month, prorated base fees, high/low tariff, feed-in); final runs refused
while L3 or missing values remain (Q-1); versions never overwrite."""

from __future__ import annotations

import hashlib
import json
import zlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from old_stores import as_version

from lastgang.billing import FinalRefused
from lastgang.billing_service import BillResult, bill, list_runs
from lastgang.errors import InvalidInput, StoreError
from lastgang.services import apply_site_text, import_bytes
from lastgang.store import open_store
from lastgang.store.duckdb_store import DuckDBStore
from lastgang.store.runs import InvoiceEntry, RunStore

VIENNA = ZoneInfo("Europe/Vienna")
WHEN = datetime(2024, 7, 1, 8, 0, tzinfo=UTC)
FIRST, LAST = date(2024, 6, 14), date(2024, 6, 17)  # Friday to Monday

HAK = "AT0081000801000000000000000700001"
TOP1 = "AT0081000801000000000000000700011"
TOP2 = "AT0081000801000000000000000700021"
PV = "AT0081000801000000000000000700041"

SITE = f"""
[site]
id = "lindengasse-5"
name = "Lindengasse 5"
timezone = "Europe/Vienna"

[[locations]]
id = "hak"
name = "Grid connection"
role = "grid"
metering_points = {{ import = "{HAK}", export = "AT0081000801000000000000000700002" }}
meters = [{{ manufacturer = "LGZ", serial = "70000001", installed = 2024-01-01 }}]

[[locations]]
id = "pv"
name = "PV roof"
role = "production"
upstream = "hak"
metering_points = {{ export = "{PV}" }}
meters = [{{ manufacturer = "FRO", serial = "PV70041", installed = 2024-01-01 }}]

[[locations]]
id = "top-1"
name = "Top 1"
role = "consumer"
upstream = "hak"
metering_points = {{ import = "{TOP1}" }}
meters = [{{ manufacturer = "ISK", serial = "70011", installed = 2024-01-01 }}]

[[locations]]
id = "top-2"
name = "Top 2"
role = "consumer"
upstream = "hak"
metering_points = {{ import = "{TOP2}" }}
meters = [{{ manufacturer = "ISK", serial = "70021", installed = 2024-01-01 }}]

[[units]]
id = "top-1"
name = "Top 1"
meters = ["top-1"]

[[units]]
id = "top-2"
name = "Top 2"
meters = ["top-2"]

[[units]]
id = "roof"
name = "PV operator"
kind = "commercial"
meters = ["pv"]

[[tariffs]]
id = "solar"
name = "Solar energy"
kind = "local"
meter = "pv"
price = "0.12"

[[tariffs]]
id = "grid-high"
name = "Grid energy, high tariff"
kind = "grid"
price = "0.30"
windows = [
  {{ days = "Mon-Fri", from = "07:00", to = "22:00" }},
  {{ days = "Sat", from = "07:00", to = "13:00" }},
]

[[tariffs]]
id = "grid-low"
name = "Grid energy, low tariff"
kind = "grid"
price = "0.20"

[[tariffs]]
id = "feed-in"
name = "Feed-in credit"
kind = "feed-in"
meter = "pv"
price = "0.08"
vat = "0"

[[fees]]
id = "base"
name = "Base fee"
amount = "3.00"
units = ["top-1", "top-2"]

[[contracts]]
unit = "top-1"
customer = "Anna Berger"
start = 2023-04-01
end = 2024-06-15

[[contracts]]
unit = "top-1"
customer = "Ben Huber"
start = 2024-06-16

[[contracts]]
unit = "top-2"
customer = "Clara Gruber"
start = 2022-09-01

[billing]
owner = "Hausverwaltung Lindengasse 5"
"""


def pv_kwh(local: datetime) -> float:
    """PV: 0.6 kWh per quarter hour 10:00-12:00, 1.5 kWh 12:00-14:00, nothing otherwise."""
    if 10 <= local.hour < 12:
        return 0.6
    if 12 <= local.hour < 14:
        return 1.5
    return 0.0


def csv_file(
    metering_point: str,
    first: date,
    last: date,
    value: Any,
    *,
    export: bool = False,
    quality: Any = None,
) -> bytes:
    """Interval values (from, to, metering point, import, export[, quality]) for whole local
    days; ``value(local_start)`` gives the kWh of a quarter hour."""
    rows = ["from,to,metering_point,import_kwh,export_kwh" + (",quality" if quality else "")]
    start = datetime(first.year, first.month, first.day, tzinfo=VIENNA).astimezone(UTC)
    end = (datetime(last.year, last.month, last.day, tzinfo=VIENNA) + timedelta(days=1)).astimezone(
        UTC
    )
    t = start
    while t < end:
        a, b = t.astimezone(VIENNA), (t + timedelta(minutes=15)).astimezone(VIENNA)
        kwh = value(a)
        imp, exp = (0.0, kwh) if export else (kwh, 0.0)
        row = f"{a.isoformat(timespec='minutes')},{b.isoformat(timespec='minutes')},"
        row += f"{metering_point},{imp},{exp}"
        if quality:
            row += f",{quality(a)}"
        rows.append(row)
        t += timedelta(minutes=15)
    return ("\n".join(rows) + "\n").encode()


def hak_import(local: datetime) -> float:
    return max(0.0, 1.0 - pv_kwh(local))


def hak_export(local: datetime) -> float:
    return max(0.0, pv_kwh(local) - 1.0)


def hak_file(first: date, last: date) -> bytes:
    text = csv_file(HAK, first, last, hak_import).decode()
    # the export column of the HAK: rebuild each row with its export value
    lines = text.splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        parts = line.split(",")
        local = datetime.fromisoformat(parts[0])
        parts[4] = str(hak_export(local))
        out.append(",".join(parts))
    return ("\n".join(out) + "\n").encode()


def l3_on_saturday_morning(local: datetime) -> str:
    return "L3" if local.date() == date(2024, 6, 15) and local.hour == 10 else "L1"


@pytest.fixture
def store() -> DuckDBStore:
    store = DuckDBStore(":memory:")
    apply_site_text(store, SITE, "lindengasse-5.toml", now=WHEN)
    return store


def load_good_data(store: DuckDBStore) -> None:
    for name, content in (
        ("hak.csv", hak_file(FIRST, LAST)),
        ("pv.csv", csv_file(PV, FIRST, LAST, pv_kwh, export=True)),
        ("top-1.csv", csv_file(TOP1, FIRST, LAST, lambda _: 0.6)),
        ("top-2.csv", csv_file(TOP2, FIRST, LAST, lambda _: 0.4)),
    ):
        import_bytes(store, "lindengasse-5", content, name, now=WHEN)


def add_run(
    runs: RunStore,
    run: int,
    run_json: str | None,
    outputs: dict[str, bytes],
    site: str = "s",
    invoices: int = 0,
    invoice_entries: list[InvoiceEntry] | None = None,
) -> None:
    """Store a run by hand (of no invoices unless told): run ``run`` is version ``run`` of the
    test period."""
    runs.add(
        run=run,
        site_id=site,
        first_day=FIRST,
        last_day=LAST,
        version=run,
        status="draft",
        created_at=WHEN,
        site_version=None,
        fingerprint="",
        inputs_json="{}",
        run_json=run_json,
        invoices=invoices,
        currency="EUR",
        net=Decimal(0),
        vat=Decimal(0),
        total=Decimal(0),
        outputs=outputs,
        invoice_entries=invoice_entries,
    )


def run_json(result: BillResult) -> dict[str, Any]:
    path = result.files[f"{result.run.key}-run.json"]
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def amounts(invoice: dict[str, Any]) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for line in invoice["lines"]:
        out[line["item"]] = (line["quantity"], line["amount"])
    return out


def test_sm_5_sm_6_small_site_through_the_store_to_the_invoice_json(
    store: DuckDBStore, tmp_path: Path
) -> None:
    load_good_data(store)
    result = bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path, now=WHEN, pdf=False)
    data = run_json(result)
    assert data["status"] == "draft" and data["run"] == 1 and data["version"] == 1
    assert data["period_label"] == "2024-06-14 00:15+02:00 – 2024-06-17 24:00+02:00"
    invoices = data["invoices"]
    assert [
        (i["number"], i["unit_id"], i["customer"], i["first_day"], i["last_day"]) for i in invoices
    ] == [
        ("lindengasse-5-R1-V1-01", "top-1", "Anna Berger", "2024-06-14", "2024-06-15"),
        ("lindengasse-5-R1-V1-02", "top-1", "Ben Huber", "2024-06-16", "2024-06-17"),
        ("lindengasse-5-R1-V1-03", "top-2", "Clara Gruber", "2024-06-14", "2024-06-17"),
        (
            "lindengasse-5-R1-V1-04",
            "roof",
            "Hausverwaltung Lindengasse 5",
            "2024-06-14",
            "2024-06-17",
        ),
    ]
    # Per day (SM-5): 10:00-12:00 PV 0.6 for 1.0 consumed: share 60 %, Top 1 gets 0.36 local
    # + 0.24 grid, Top 2 0.24 + 0.16; 12:00-14:00 PV 1.5: share 100 %, surplus 0.5; else grid.
    # Top 1 per day: local 8 x 0.36 + 8 x 0.6 = 7.68; grid 57.6 - 7.68 = 49.92, of it high:
    #   Fri/Mon (07-22) 44 x 0.6 + 8 x 0.24 = 28.32, Sat (07-13) 12 x 0.6 + 8 x 0.24 = 9.12,
    #   Sun 0.
    # Anna (Fri, Sat): solar 15.36, high 28.32 + 9.12 = 37.44, low 21.6 + 40.8 = 62.4.
    anna, ben, clara, roof = invoices
    assert amounts(anna) == {
        "solar": ("15.360", "1.84"),  # 1.8432
        "grid-high": ("37.440", "11.23"),  # 11.232
        "grid-low": ("62.400", "12.48"),
        "base": ("2", "0.20"),  # 3.00 x 2/30 days of June
    }
    assert (anna["net"], anna["vat_total"], anna["total"]) == ("25.75", "5.15", "30.90")
    # Ben (Sun, Mon): solar 15.36, high 0 + 28.32, low 49.92 + 21.6 = 71.52
    assert amounts(ben) == {
        "solar": ("15.360", "1.84"),
        "grid-high": ("28.320", "8.50"),  # 8.496
        "grid-low": ("71.520", "14.30"),  # 14.304
        "base": ("2", "0.20"),
    }
    assert (ben["net"], ben["vat_total"], ben["total"]) == ("24.84", "4.97", "29.81")
    # Clara (Top 2, 0.4 per quarter hour, four days): local 4 x (8 x 0.24 + 8 x 0.4) = 20.48;
    # high Fri/Mon 44 x 0.4 + 8 x 0.16 = 18.88, Sat 12 x 0.4 + 8 x 0.16 = 6.08: 43.84;
    # low 153.6 - 20.48 - 43.84 = 89.28
    assert amounts(clara) == {
        "solar": ("20.480", "2.46"),  # 2.4576
        "grid-high": ("43.840", "13.15"),  # 13.152
        "grid-low": ("89.280", "17.86"),  # 17.856
        "base": ("4", "0.40"),
    }
    assert (clara["net"], clara["vat_total"], clara["total"]) == ("33.87", "6.77", "40.64")
    # the PV operator (no contract: the owner): 4 days x 8 x 0.5 kWh surplus at 0.08, no VAT
    assert amounts(roof) == {"feed-in": ("16.000", "-1.28")}
    assert roof["total"] == "-1.28"
    assert data["total"] == str(
        Decimal("30.90") + Decimal("29.81") + Decimal("40.64") - Decimal("1.28")
    )
    # months, meters, metering point IDs (dotted), batches
    (june,) = anna["months"]
    assert (june["consumption_kwh"], june["local_kwh"], june["grid_kwh"]) == (
        "115.200",
        "15.360",
        "99.840",
    )
    meters = {m["id"]: m for m in anna["meters"]}
    assert meters["top-1"]["metering_points"] == ["AT.008100.08010.00000000000000700011"]
    assert meters["top-1"]["physical_meters"] == ["ISK 70011"]
    assert meters["top-1"]["batches"] == [3]
    assert meters["pv"]["batches"] == [2]
    by_location = {b["location"]: b["batches"] for b in data["batches"]}
    assert by_location == {"hak": [1], "pv": [2], "top-1": [3], "top-2": [4]}
    assert [b["batch"] for b in data["inputs"]["batches"]] == [1, 2, 3, 4]
    assert data["inputs"]["batches"][0]["source"] == "hak.csv"
    assert data["inputs"]["site_version"] == 1
    # reconciliation: the HAK registered exactly consumers - production
    (row,) = data["reconciliation"]["rows"]
    assert (row["grid_import_kwh"], row["grid_export_kwh"]) == ("332.800", "16.000")
    assert (row["consumers_kwh"], row["production_kwh"]) == ("384.000", "67.200")
    assert row["difference_kwh"] == "0.000" and row["flagged"] is False
    # the CSV of all lines: one row per line, quantities and amounts as billed
    lines = result.files[f"{result.run.key}-lines.csv"].read_text().splitlines()
    assert len(lines) == 1 + 4 + 4 + 4 + 1
    assert lines[1].startswith("lindengasse-5-R1-V1-01,top-1,Anna Berger,local,solar,")
    summary = json.loads(result.files[f"{result.run.key}-summary.json"].read_text())
    assert summary["total"] == data["total"]
    assert "lindengasse-5-R1-V1-01.html" in summary["files"]


def test_a_run_reads_the_facts_of_the_batches_it_used_only(
    store: DuckDBStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listener archives a batch a minute: a run asks the archive for the batches its values
    came from, by number, and never reads the whole archive; its provenance is unchanged."""
    load_good_data(store)
    every = {b.batch: b for b in store.batches("lindengasse-5")}

    def whole(*args: object, **kwargs: object) -> list[object]:
        raise AssertionError("the whole raw archive was read")

    monkeypatch.setattr(DuckDBStore, "batches", whole)
    result = bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path, now=WHEN, pdf=False)
    assert run_json(result)["inputs"]["batches"] == [
        {
            "batch": n,
            "sha256": every[n].sha256,
            "source": every[n].source,
            "format": every[n].format,
            "imported_at": every[n].imported_at.isoformat(),
        }
        for n in (1, 2, 3, 4)
    ]


def test_q_1_final_refused_with_l3_and_missing_then_accepted_after_good_data(
    store: DuckDBStore, tmp_path: Path
) -> None:
    # Top 2 with L3 on Saturday 10:00-11:00; the PV without Monday at all
    for name, content in (
        ("hak.csv", hak_file(FIRST, LAST)),
        ("pv.csv", csv_file(PV, FIRST, LAST - timedelta(days=1), pv_kwh, export=True)),
        ("top-1.csv", csv_file(TOP1, FIRST, LAST, lambda _: 0.6)),
        (
            "top-2.csv",
            csv_file(TOP2, FIRST, LAST, lambda _: 0.4, quality=l3_on_saturday_morning),
        ),
    ):
        import_bytes(store, "lindengasse-5", content, name, now=WHEN)
    with pytest.raises(FinalRefused) as caught:
        bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path / "a", final=True, now=WHEN)
    problems = {p.meter: p for p in caught.value.problems}
    assert set(problems) == {
        "AT.008100.08010.00000000000000700041",
        "AT.008100.08010.00000000000000700021",
    }
    pv = problems["AT.008100.08010.00000000000000700041"]
    assert "96 quarter hour(s) without a value" in pv.reason
    assert pv.time == "2024-06-17 00:15+02:00 – 2024-06-17 24:00+02:00"
    top2 = problems["AT.008100.08010.00000000000000700021"]
    assert "4 quarter hour(s) with L3" in top2.reason
    assert top2.time == "2024-06-15 10:15+02:00 – 2024-06-15 11:00+02:00"
    assert not (tmp_path / "a").exists()  # nothing written
    assert list_runs(store) == []  # nothing stored

    # a draft of the same data states the substitute energy
    draft = bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path / "d", now=WHEN, pdf=False)
    anna, ben, clara, _ = draft.run.invoices
    # Saturday 10:00-11:00 with PV: the split depends on Top 2's L3 values too
    assert (anna.quality.l3_kwh, clara.quality.l3_kwh) == (Decimal("2.400"), Decimal("1.600"))
    assert ben.quality.missing_slots == 96 and anna.quality.missing_slots == 0
    assert draft.record.status == "draft"

    # the measured values arrive: final accepted, with the hand-worked numbers
    import_bytes(
        store,
        "lindengasse-5",
        csv_file(PV, LAST, LAST, pv_kwh, export=True),
        "pv-monday.csv",
        now=WHEN,
    )
    import_bytes(
        store,
        "lindengasse-5",
        csv_file(TOP2, date(2024, 6, 15), date(2024, 6, 15), lambda _: 0.4, quality=lambda _: "L1"),
        "top-2-measured.csv",
        now=WHEN,
    )
    final = bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path / "f", final=True, now=WHEN)
    assert final.run.status == "final" and final.record.version == 2
    assert [i.total for i in final.run.invoices] == [
        Decimal("30.90"),
        Decimal("29.81"),
        Decimal("40.64"),
        Decimal("-1.28"),
    ]
    assert all(i.quality.substitute_kwh == 0 for i in final.run.invoices)
    assert (tmp_path / "f" / "lindengasse-5-R2-V2-01.pdf").read_bytes().startswith(b"%PDF")


def test_billing_again_gives_version_2_and_keeps_version_1(
    store: DuckDBStore, tmp_path: Path
) -> None:
    load_good_data(store)
    first = bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path / "v1", final=True, now=WHEN)
    runs = RunStore(store)
    stored_json = runs.run_json(first.record.run)
    stored_files = {o.name: o.sha256 for o in runs.outputs(first.record.run)}
    assert set(stored_files) == {p.name for p in first.files.values()}
    for output in runs.outputs(first.record.run):  # each file stored as written
        assert output.content == (tmp_path / "v1" / output.name).read_bytes()
        assert output.sha256 == hashlib.sha256(output.content).hexdigest()
        assert runs.output(first.record.run, output.name) == output
    assert runs.output(first.record.run, "no-such-file.html") is None
    # text is stored compressed, a PDF as it is
    stored = store.connection.execute(
        "SELECT name, octet_length(content), encoding FROM billing_run_outputs WHERE run = ?",
        [first.record.run],
    ).fetchall()
    assert len(stored) == len(stored_files)
    for name, size, encoding in stored:
        written = (tmp_path / "v1" / name).stat().st_size
        if name.endswith(".pdf"):
            assert (encoding, size) == ("", written)
        elif name.endswith("-run.json"):  # without its invoices, which are kept one by one
            assert encoding == "zstd+invoices" and size < written
        else:
            assert encoding == "zstd" and size < written
    assert stored_json == (tmp_path / "v1" / "lindengasse-5-R1-V1-run.json").read_text("utf-8")
    assert json.loads(stored_json)["status"] == "final"

    second = bill(
        store,
        "lindengasse-5",
        FIRST,
        LAST,
        out_dir=tmp_path / "v2",
        final=True,
        now=WHEN + timedelta(days=1),
    )
    assert (second.record.run, second.record.version) == (2, 2)
    assert second.run.invoices[0].number == "lindengasse-5-R2-V2-01"
    assert runs.run_json(1) == stored_json
    assert {o.name: o.sha256 for o in runs.outputs(1)} == stored_files
    assert second.run.fingerprint == first.run.fingerprint  # the same inputs
    # the fingerprinted inputs are kept as they were billed
    assert runs.inputs_json(2) == runs.inputs_json(1) != "{}"
    with pytest.raises(StoreError, match="no billing run 99"):
        runs.inputs_json(99)
    assert [(r.run, r.version, r.status) for r in list_runs(store, "lindengasse-5")] == [
        (1, 1, "final"),
        (2, 2, "final"),
    ]
    # another period starts at version 1
    other = bill(store, "lindengasse-5", FIRST, FIRST, out_dir=tmp_path / "o", now=WHEN, pdf=False)
    assert (other.record.run, other.record.version) == (3, 1)
    # a run number or version once stored is refused
    with pytest.raises(StoreError, match="never replaced"):
        runs.add(
            run=1,
            site_id="x",
            first_day=FIRST,
            last_day=LAST,
            version=9,
            status="draft",
            created_at=WHEN,
            site_version=1,
            fingerprint="",
            inputs_json="{}",
            run_json="{}",
            invoices=0,
            currency="EUR",
            net=Decimal(0),
            vat=Decimal(0),
            total=Decimal(0),
            outputs={},
        )


def test_files_of_a_run_are_never_overwritten(store: DuckDBStore, tmp_path: Path) -> None:
    load_good_data(store)
    bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path, now=WHEN, pdf=False)
    before = sorted(p.name for p in tmp_path.iterdir())
    # a second run into the same folder has other names (run 2): both sets are there
    bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path, now=WHEN, pdf=False)
    after = sorted(p.name for p in tmp_path.iterdir())
    assert set(before) < set(after)
    assert len(after) == 2 * len(before)


def test_bill_refuses_bad_input(store: DuckDBStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="ends before it starts"):
        bill(store, "lindengasse-5", LAST, FIRST, out_dir=tmp_path)
    with pytest.raises(StoreError, match="not in the store"):
        bill(store, "no-such-site", FIRST, LAST, out_dir=tmp_path)


def test_tor_7_2_1_invoice_names_both_meters_of_an_exchange_with_their_quarter_hours(
    tmp_path: Path,
) -> None:
    # Top 2's meter ISK 70021 is exchanged for ISK 70022 on Saturday 15 June at 10:30: the old
    # meter measured up to the quarter hour ending 10:30, the new one from the one ending 10:45
    exchange = (
        'meters = [{ manufacturer = "ISK", serial = "70021", installed = 2024-01-01, '
        "removed = 2024-06-15T10:30:00+02:00 },\n"
        '  { manufacturer = "ISK", serial = "70022", installed = 2024-06-15T10:30:00+02:00 }]'
    )
    site = SITE.replace(
        'meters = [{ manufacturer = "ISK", serial = "70021", installed = 2024-01-01 }]', exchange
    )
    assert site != SITE
    store = DuckDBStore(":memory:")
    apply_site_text(store, site, "lindengasse-5.toml", now=WHEN)
    load_good_data(store)
    result = bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path, now=WHEN, pdf=False)
    data = run_json(result)
    clara = next(i for i in data["invoices"] if i["customer"] == "Clara Gruber")
    top2 = next(m for m in clara["meters"] if m["id"] == "top-2")
    assert top2["physical_meters"] == ["ISK 70021", "ISK 70022"]
    assert top2["meter_periods"] == [
        ["2024-06-14 00:15+02:00", "2024-06-15 10:30+02:00"],
        ["2024-06-15 10:45+02:00", "2024-06-17 24:00+02:00"],
    ]
    # one meter over the whole period: no periods
    anna = data["invoices"][0]
    top1 = next(m for m in anna["meters"] if m["id"] == "top-1")
    assert top1["physical_meters"] == ["ISK 70011"] and top1["meter_periods"] == []
    # the invoice page says which meter measured when
    page = result.files["lindengasse-5-R1-V1-03.html"].read_text(encoding="utf-8")
    assert "meter ISK 70021: 2024-06-14 00:15+02:00 – 2024-06-15 10:30+02:00" in page
    assert "meter ISK 70022: 2024-06-15 10:45+02:00 – 2024-06-17 24:00+02:00" in page
    # without any value of Top 2 the site file's installation times tell the same
    empty = DuckDBStore(":memory:")
    apply_site_text(empty, site, "lindengasse-5.toml", now=WHEN)
    for name, content in (
        ("hak.csv", hak_file(FIRST, LAST)),
        ("pv.csv", csv_file(PV, FIRST, LAST, pv_kwh, export=True)),
        ("top-1.csv", csv_file(TOP1, FIRST, LAST, lambda _: 0.6)),
    ):
        import_bytes(empty, "lindengasse-5", content, name, now=WHEN)
    missing = bill(empty, "lindengasse-5", FIRST, LAST, out_dir=tmp_path / "m", now=WHEN, pdf=False)
    clara = next(i for i in run_json(missing)["invoices"] if i["customer"] == "Clara Gruber")
    again = next(m for m in clara["meters"] if m["id"] == "top-2")
    assert again["physical_meters"] == top2["physical_meters"]
    assert again["meter_periods"] == top2["meter_periods"]


def test_the_profile_digest_hashes_batches_as_8_byte_integers_whatever_the_store_reads(
    store: DuckDBStore, tmp_path: Path
) -> None:
    """The run's ``profiles_sha256`` is SHA-256 over each location's id, then its import,
    export and quality bytes and its batches as 8-byte integers: the store reads batches in 4
    bytes where they fit, and the fingerprint of the same values must not change with that."""
    import hashlib

    import numpy as np

    from lastgang.timegrid import period_slots

    load_good_data(store)
    result = bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path, now=WHEN)
    site = store.site_version("lindengasse-5").site
    start, stop = period_slots(FIRST, LAST, site.site.timezone)
    ids = [loc.id for loc in site.locations]
    profiles = store.load_profiles("lindengasse-5", ids, start, stop)
    assert profiles[ids[0]].batch.dtype == np.int32
    digest = hashlib.sha256()
    for loc in ids:
        p = profiles[loc]
        digest.update(loc.encode())
        for part in (p.import_kwh, p.export_kwh, p.quality, p.batch.astype(np.int64)):
            digest.update(part.tobytes())
    assert result.run.inputs["profiles_sha256"] == digest.hexdigest()


def test_a_run_json_is_stored_once_as_the_file_or_in_its_column(store: DuckDBStore) -> None:
    """``lastgang bill`` keeps the run JSON once, as the run's file (1.2 GB at 10,000 units);
    a run stored with its JSON given, as every run was before, reads it from its column."""
    runs = RunStore(store)

    text = '{\n  "period_label": "1 – 30 Jun"\n}\n'
    add_run(runs, 1, None, {"s-R1-V1-run.json": text.encode(), "s-R1-V1-01.html": b"<html>"})
    add_run(runs, 2, '{"stored": "in the column"}', {"s-R2-V2-run.json": b"{}"})
    assert runs.run_json(1) == text
    assert runs.run_json(2) == '{"stored": "in the column"}'
    row = store.connection.execute("SELECT run_json FROM billing_runs WHERE run = 1").fetchall()
    assert row == [("",)]  # not a second copy
    with pytest.raises(ValueError, match="exactly one file"):
        add_run(runs, 3, None, {"s-R3-V3-01.html": b"<html>"})
    with pytest.raises(ValueError, match="exactly one file"):
        add_run(runs, 3, None, {"a-run.json": b"{}", "b-run.json": b"{}"})
    assert [r.run for r in runs.runs()] == [1, 2]


def _entry_fields(e: Any) -> tuple[Any, ...]:
    """What a list of invoices shows of an invoice or an invoice entry."""
    return (
        e.number,
        e.unit_id,
        e.unit_name,
        e.customer,
        e.status,
        e.first_day,
        e.last_day,
        e.consumption_kwh,
        e.local_kwh,
        e.grid_kwh,
        e.total,
        e.currency,
    )


def test_a_run_keeps_each_invoice_on_its_own_and_its_json_whole(
    store: DuckDBStore, tmp_path: Path
) -> None:
    """One invoice, the list of invoices and the run without its invoices are read without the
    rest of the run JSON (1.2 GB at 10,000 units); the run JSON put together again is the file
    as written, byte for byte."""
    load_good_data(store)
    result = bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path / "r", now=WHEN)
    runs, n = RunStore(store), result.record.run
    written = result.files[f"{result.run.key}-run.json"].read_bytes()
    whole = json.loads(written)
    assert runs.keeps_invoices(n)
    entries = runs.invoices(n)
    assert entries is not None
    assert [_entry_fields(e) for e in entries] == [_entry_fields(i) for i in result.run.invoices]
    assert len(entries) == len(whole["invoices"]) == 4
    for entry, invoice in zip(entries, whole["invoices"], strict=True):
        assert json.loads(written[entry.at : entry.at + entry.length].lstrip(b",")) == invoice
        text = runs.invoice_json(n, entry.number)
        assert text is not None and json.loads(text) == invoice
    assert runs.invoice_json(n, "lindengasse-5-R1-V1-99") is None
    head = runs.run_head(n)
    assert head is not None and json.loads(head) == {**whole, "invoices": []}
    assert runs.run_json(n).encode() == written
    top = entries[1].unit_id
    assert runs.invoices(n, unit_id=top) == [e for e in entries if e.unit_id == top]
    assert runs.invoices(n, unit_id="no-such-unit") == []
    # the pieces in the store: the rest of the file and each invoice, compressed
    rest, full = store.connection.execute(
        "SELECT octet_length(content), (SELECT sum(json_length) FROM billing_run_invoices "
        "WHERE run = ?) FROM billing_run_outputs WHERE run = ? AND suffix(name, '-run.json')",
        [n, n],
    ).fetchall()[0]
    assert full == sum(e.length for e in entries) and rest < len(written) - full


def test_a_unit_s_invoices_of_every_run_come_in_two_queries(
    store: DuckDBStore, tmp_path: Path
) -> None:
    """A unit's page lists its invoices of every run: the entries of all runs stored with them
    at once, by run; a run stored without them is left to its run JSON."""
    load_good_data(store)
    runs = RunStore(store)
    assert runs.unit_invoices("lindengasse-5", "top-1") == {}  # no run yet
    first = bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path / "a", now=WHEN, pdf=False)
    add_run(runs, 2, None, {"s-R2-V2-run.json": b'{"invoices": []}'}, site="lindengasse-5")
    third = bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path / "c", now=WHEN, pdf=False)
    other = bill(store, "lindengasse-5", FIRST, FIRST, out_dir=tmp_path / "d", now=WHEN, pdf=False)
    unit = first.run.invoices[0].unit_id
    found = runs.unit_invoices("lindengasse-5", unit)
    assert sorted(found) == [1, 3, 4]  # run 2 keeps no entries
    for result in (first, third, other):
        want = [i for i in result.run.invoices if i.unit_id == unit]
        got = found[result.record.run]
        assert [_entry_fields(e) for e in got] == [_entry_fields(i) for i in want]
        assert got == runs.invoices(result.record.run, unit)
    assert runs.unit_invoices("lindengasse-5", "no-such-unit") == {1: [], 3: [], 4: []}
    assert runs.unit_invoices("other-site", unit) == {}


def test_a_run_json_put_together_is_checked_against_its_sha_256(
    store: DuckDBStore, tmp_path: Path
) -> None:
    load_good_data(store)
    result = bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path / "r", now=WHEN)
    runs, n = RunStore(store), result.record.run
    number = result.run.invoices[0].number
    text = runs.invoice_json(n, number)
    assert text is not None and '"total": "' in text
    at = text.index('"total": "') + len('"total": "')
    digit = str((int(text[at]) + 1) % 10)  # another total of the same length

    def damage(invoice_text: str) -> None:
        store.connection.execute(
            "UPDATE billing_run_invoices SET content = ? WHERE run = ? AND number = ?",
            [zlib.compress(("\n    " + invoice_text).encode()), n, number],
        )

    damage(text[:at] + digit + text[at + 1 :])
    with pytest.raises(StoreError, match="does not match its SHA-256"):
        runs.run_json(n)
    with pytest.raises(StoreError, match="does not match its SHA-256"):
        runs.output(n, f"{result.run.key}-run.json")
    damage(text[:at] + "1" + text[at:])  # one byte longer: the next invoice no longer fits
    with pytest.raises(StoreError, match="does not fit its invoices"):
        runs.run_json(n)
    found = runs.output(n, f"{number}.html")  # the other files are read as they are
    assert found is not None and number.encode() in found.content


def test_invoice_entries_must_match_the_run_json_they_point_into(store: DuckDBStore) -> None:
    runs = RunStore(store)
    text = b'{\n  "invoices": [\n    {"n": 1},\n    {"n": 2}\n  ]\n}\n'
    first = text.index(b"\n    {")
    second = text.index(b",\n    {")
    spans = [(first, second - first), (second, text.index(b"\n  ]") - second)]

    def entry(number: str, at: int, length: int) -> InvoiceEntry:
        zero = Decimal(0)
        return InvoiceEntry(
            number, "u", "", "", "draft", FIRST, LAST, zero, zero, zero, zero, "EUR", at, length
        )

    def add(entries: list[InvoiceEntry], run_json: str | None = None, count: int = 2) -> None:
        outputs = {"s-R1-V1-run.json": text}
        add_run(runs, 1, run_json, outputs, invoices=count, invoice_entries=entries)

    good = [entry("a", *spans[0]), entry("b", *spans[1])]
    with pytest.raises(ValueError, match="2 invoice entries for a run of 3"):
        add(good, count=3)
    with pytest.raises(ValueError, match="more than once"):
        add([entry("a", *spans[0]), entry("a", *spans[1])])
    with pytest.raises(ValueError, match="does not lie after the one before it"):
        add([entry("a", *spans[1]), entry("b", *spans[0])])
    with pytest.raises(ValueError, match="does not lie after the one before it"):
        add([entry("a", *spans[0]), entry("b", spans[1][0], len(text))])
    with pytest.raises(ValueError, match="need the run JSON among the outputs"):
        add(good, run_json=text.decode())
    assert runs.runs() == []  # nothing stored by any of them
    add(good)
    assert runs.run_json(1).encode() == text
    assert runs.invoice_json(1, "b") == '{"n": 2}'
    assert runs.run_head(1) == '{\n  "invoices": [\n  ]\n}\n'


def test_the_api_keeps_parsed_run_json_up_to_a_size_the_most_recently_used(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web pages of a run read its JSON; the parsed JSON of recent runs is kept, up to a
    total size of text, so that a run of 10,000 units (1.2 GB) does not stay in memory."""
    from lastgang.api import routes_billing
    from lastgang.cache import SizedCache

    monkeypatch.setattr(routes_billing, "_JSON_CACHE", SizedCache(100))
    runs = RunStore(store)
    texts = {
        1: '{"run": 1, "pad": "' + "a" * 20 + '"}',
        2: '{"run": 2, "pad": "' + "b" * 20 + '"}',
        3: '{"run": 3, "pad": "' + "c" * 120 + '"}',
        4: '{"run": 4, "pad": "' + "d" * 20 + '"}',
        5: '{"run": 5, "energy_kwh": NaN}',
    }
    for run, text in texts.items():
        add_run(runs, run, text, {})

    def read(run: int) -> dict[str, Any]:
        return routes_billing._run_json(store, runs.get(run))

    def kept() -> list[int]:
        return [run for _, run in routes_billing._JSON_CACHE.keys_by_use()]

    assert read(1) == json.loads(texts[1]) and read(2) == json.loads(texts[2])
    assert kept() == [1, 2]
    assert read(1) is read(1)  # from the cache
    assert kept() == [2, 1]
    assert read(4)["run"] == 4
    assert kept() == [1, 4]  # 2 was the least recently used
    assert read(3) == json.loads(texts[3])  # larger than the whole cache: not kept
    assert kept() == [1, 4]
    assert read(5)["energy_kwh"] != read(5)["energy_kwh"]  # NaN, read by Python's parser


OLD_RUNS_SCHEMA = """
CREATE TABLE billing_runs (
    run BIGINT PRIMARY KEY, site_id VARCHAR NOT NULL, first_day DATE NOT NULL,
    last_day DATE NOT NULL, version INTEGER NOT NULL, status VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL, site_version INTEGER, fingerprint VARCHAR NOT NULL,
    inputs_json VARCHAR NOT NULL, run_json VARCHAR NOT NULL, invoices INTEGER NOT NULL,
    currency VARCHAR NOT NULL, net VARCHAR NOT NULL, vat VARCHAR NOT NULL,
    total VARCHAR NOT NULL, UNIQUE (site_id, first_day, last_day, version)
);
CREATE TABLE billing_run_outputs (
    run BIGINT NOT NULL, name VARCHAR NOT NULL, sha256 VARCHAR NOT NULL,
    content BLOB NOT NULL, PRIMARY KEY (run, name)
);
INSERT INTO billing_runs VALUES (1, 's', DATE '2024-06-14', DATE '2024-06-17', 1, 'draft',
    TIMESTAMPTZ '2024-06-18 08:00:00+00', NULL, 'f', '{}', '{"run": 1}', 1, 'EUR', '1.00',
    '0.20', '1.20');
INSERT INTO billing_run_outputs VALUES (1, 's-R1-V1-01.html', 'x', '<html>old</html>'::BLOB);
"""


def test_runs_stored_before_files_were_compressed_are_read_as_they_are(tmp_path: Path) -> None:
    """A store whose run files were stored as they are (no ``encoding`` column) is read as it
    is, also read-only; the first run stored into it adds the column."""
    path = tmp_path / "old.duckdb"
    old = DuckDBStore(path)
    old.connection.execute(OLD_RUNS_SCHEMA)
    old.close()
    with open_store(path, read_only=True) as store:
        runs = RunStore(store)
        assert runs.run_json(1) == '{"run": 1}'
        assert [(o.name, o.content) for o in runs.outputs(1)] == [
            ("s-R1-V1-01.html", b"<html>old</html>")
        ]
        found = runs.output(1, "s-R1-V1-01.html")
        assert found is not None and found.content == b"<html>old</html>"
        assert not runs.keeps_invoices(1)  # a store without the table of invoice entries
        assert runs.invoices(1) is None and runs.run_head(1) is None
    with open_store(path) as store:
        runs = RunStore(store)
        add_run(runs, 2, None, {"s-R2-V2-run.json": b'{"run": 2}', "s-R2-V2-01.pdf": b"%PDF-1.7"})
        assert [(o.name, o.content) for o in runs.outputs(1)] == [
            ("s-R1-V1-01.html", b"<html>old</html>")
        ]
        assert runs.run_json(2) == '{"run": 2}'
        assert [(o.name, o.content) for o in runs.outputs(2)] == [
            ("s-R2-V2-01.pdf", b"%PDF-1.7"),
            ("s-R2-V2-run.json", b'{"run": 2}'),
        ]


def test_runs_whose_files_were_deflated_are_read_as_they_are(
    store: DuckDBStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs stored before their text was compressed with Zstandard have it deflated (zlib):
    every file, the run JSON put together from its pieces, one invoice, the run without its
    invoices and a unit's invoices read as written, beside a run stored now."""
    from lastgang.store import runs as stored_runs

    load_good_data(store)
    with monkeypatch.context() as before:  # what the store wrote before
        before.setattr(stored_runs, "compress", lambda data: zlib.compress(data, 1))
        before.setattr(stored_runs, "_SPLIT", "zlib+invoices")
        before.setattr(
            stored_runs,
            "_stored",
            lambda name, content: (
                (zlib.compress(content, 1), "zlib") if name.endswith(".html") else (content, "")
            ),
        )
        old = bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path / "v1", now=WHEN)
    new = bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path / "v2", now=WHEN)
    encodings = "SELECT DISTINCT encoding FROM billing_run_outputs WHERE run = ? ORDER BY 1"
    assert store.connection.execute(encodings, [1]).fetchall() == [
        ("",), ("zlib",), ("zlib+invoices",)
    ]  # fmt: skip
    assert store.connection.execute(encodings, [2]).fetchall() == [
        ("",), ("zstd",), ("zstd+invoices",)
    ]  # fmt: skip
    pieces = "SELECT content FROM billing_run_invoices WHERE run = ?"
    for run, start in ((1, b"\x78"), (2, b"\x28\xb5\x2f\xfd")):  # zlib's, Zstandard's
        found = {
            bytes(c)[: len(start)] for (c,) in store.connection.execute(pieces, [run]).fetchall()
        }
        assert found == {start}
    runs = RunStore(store)
    for result, folder in ((old, "v1"), (new, "v2")):
        run = result.record.run
        for output in runs.outputs(run):
            assert output.content == (tmp_path / folder / output.name).read_bytes()
        written = json.loads(result.files[f"{result.run.key}-run.json"].read_text("utf-8"))
        assert runs.keeps_invoices(run)
        head = json.loads(runs.run_head(run) or "")
        assert head == {**written, "invoices": []}
        for invoice in written["invoices"]:
            assert json.loads(runs.invoice_json(run, invoice["number"]) or "") == invoice
    first = (runs.invoices(1) or [])[0]
    units = runs.unit_invoices("lindengasse-5", first.unit_id)
    assert sorted(units) == [1, 2] and units[1][0] == first
    assert [e.number for e in units[2]] == [e.number for e in runs.invoices(2, first.unit_id) or []]


def _blob_compression(store: DuckDBStore, table: str) -> set[str]:
    store.connection.execute("CHECKPOINT")
    rows = store.connection.execute(
        "SELECT DISTINCT compression FROM pragma_storage_info(?) "
        "WHERE column_name = 'content' AND segment_type = 'BLOB'",
        [table],
    ).fetchall()
    return {r[0] for r in rows}


def test_a_version_4_store_keeps_its_runs_files_and_invoices_as_they_are_when_upgraded(
    tmp_path: Path,
) -> None:
    """Version 4 let DuckDB compress the runs' files and invoices (ZSTD, a vector of 2,048 rows
    at a time: one PDF of 9,900 took 120 ms to read); opened for writing, such a store copies
    them into tables that keep them as they are, and every run reads as before."""
    path = tmp_path / "v4.duckdb"
    with DuckDBStore(path) as store:
        apply_site_text(store, SITE, "lindengasse-5.toml", now=WHEN)
        load_good_data(store)
        result = bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path / "r", now=WHEN)
        n = result.record.run
        runs = RunStore(store)
        before = (runs.run_json(n), runs.outputs(n), runs.invoices(n))
        numbers = [e.number for e in before[2] or ()]
        texts = [runs.invoice_json(n, number) for number in numbers]
        for table in ("billing_run_outputs", "billing_run_invoices"):
            assert _blob_compression(store, table) == {"Uncompressed"}
            # what version 4 wrote: the same rows in a column DuckDB compresses as it chooses
            con = store.connection
            (ddl,) = con.execute(
                "SELECT sql FROM duckdb_tables() WHERE table_name = ?", [table]
            ).fetchone() or ("",)
            assert "USING COMPRESSION Uncompressed " in ddl
            con.execute(f"ALTER TABLE {table} RENAME TO kept")
            con.execute(ddl.replace("USING COMPRESSION Uncompressed ", ""))
            con.execute(f"INSERT INTO {table} SELECT * FROM kept")
            con.execute("DROP TABLE kept")
            assert _blob_compression(store, table) != {"Uncompressed"}
        as_version(con, 4)
    with open_store(path, read_only=True) as old:  # read as it is
        runs = RunStore(old)
        assert (runs.run_json(n), runs.outputs(n), runs.invoices(n)) == before
    with open_store(path) as store:
        for table in ("billing_run_outputs", "billing_run_invoices"):
            assert _blob_compression(store, table) == {"Uncompressed"}
        runs = RunStore(store)
        assert (runs.run_json(n), runs.outputs(n), runs.invoices(n)) == before
        assert [runs.invoice_json(n, number) for number in numbers] == texts
        assert len(numbers) == 4 and all(texts)
        again = bill(store, "lindengasse-5", FIRST, LAST, out_dir=tmp_path / "r2", now=WHEN)
        assert again.record.version == 2
        assert runs.run_json(again.record.run).encode() == (
            again.files[f"{again.run.key}-run.json"].read_bytes()
        )
