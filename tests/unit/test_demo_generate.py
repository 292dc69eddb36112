"""The demo data generator: physics that balances, and files a real import accepts.

A week around the spring clock change (a 92-quarter-hour day) of the shipped emergency power
example (SM-3) is generated once per module.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from lastgang.concept.load import load_site
from lastgang.concept.model import Site, Transformer
from lastgang.demo import DemoModel, GeneratedData, generate_site_period, site_to_toml
from lastgang.demo.generate import _Clock, _sun_vector
from lastgang.timegrid import period_slots

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "emergency-power" / "site.toml"
TZ = "Europe/Vienna"
FIRST, LAST = date(2025, 3, 27), date(2025, 4, 2)  # holds 30 March 2025 (92 quarter hours)


def _epochs(texts: pl.Series) -> np.ndarray:
    """ISO 8601 texts with offset -> epoch seconds (independent of lastgang's parser)."""
    return np.array([int(datetime.fromisoformat(t).timestamp()) for t in texts.to_list()])


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(EXAMPLE)


@pytest.fixture(scope="module")
def week(site: Site, tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    start, stop = period_slots(FIRST, LAST, TZ)
    return generate_site_period(site, start, stop, tmp_path_factory.mktemp("week"), seed=3)


def _read(data: GeneratedData, kind: str) -> pl.DataFrame:
    paths = [p for p in data.files if p.name.startswith(kind)]
    assert paths, f"no {kind} files written"
    return pl.concat([pl.read_csv(p, infer_schema=False) for p in paths])


def _registers(data: GeneratedData, meter: str, obis: str) -> tuple[np.ndarray, np.ndarray]:
    df = _read(data, "registers").filter((pl.col("meter") == meter) & (pl.col("obis") == obis))
    return _epochs(df["time"]), df["value"].cast(pl.Float64).to_numpy()


def _meter_key(site: Site, location: str, index: int = 0) -> str:
    return site.location(location).meters[index].key


# --------------------------------------------------------------------------------------------
# the period and the physics


def test_tor_4_2_week_with_spring_change_has_668_quarter_hours(week: GeneratedData) -> None:
    assert week.stop - week.start == 7 * 96 - 4
    for values in (*week.import_kwh.values(), *week.export_kwh.values(), *week.flows.values()):
        assert values.shape == (668,)
        assert np.isfinite(values).all()


def test_sm3_grid_meter_balances_the_flows_behind_it_in_every_slot(week: GeneratedData) -> None:
    """HAK import - export = consumption - PV - unit output + unit draw, per quarter hour."""
    f = week.flows
    consumption = sum(v for k, v in f.items() if k.startswith("consumption:"))
    other_pv = sum(v for k, v in f.items() if k.startswith("pv:") and k != "pv:unit")
    unit_net = f["unit:output"] - f["unit:draw"]
    np.testing.assert_allclose(
        week.net("hak"), consumption - other_pv - unit_net, rtol=0, atol=1e-9
    )
    # the example wires HAK -> excl. solar -> (unit, PV roof, incl. solar -> consumers)
    np.testing.assert_allclose(week.net("incl-solar"), consumption, rtol=0, atol=1e-9)
    np.testing.assert_allclose(week.net("excl-solar"), week.net("hak"), rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        week.production_kwh, week.net("incl-solar") - week.net("excl-solar"), atol=1e-12
    )
    np.testing.assert_allclose(week.production_kwh, unit_net + other_pv, rtol=0, atol=1e-9)


def test_tor_5_0b_grid_meter_registers_import_and_export_in_one_quarter_hour(
    week: GeneratedData,
) -> None:
    imp, exp = week.import_kwh["hak"], week.export_kwh["hak"]
    both = (imp > 1e-4) & (exp > 1e-4)
    assert both.any()
    # never netted: import and export exceed the net where both occur
    assert (imp[both] + exp[both] > np.abs(imp[both] - exp[both])).all()


def test_sm4_production_is_sometimes_negative(week: GeneratedData) -> None:
    """The unit's standby (and grid charging) makes incl. solar - excl. solar negative."""
    assert (week.production_kwh < 0).any()
    assert (week.production_kwh > 0).any()
    night = week.flows["pv:unit"] + week.flows["pv:pv-roof"] == 0
    assert (week.flows["unit:draw"][night] >= 0).all()


def test_battery_respects_capacity_power_and_reserve(week: GeneratedData) -> None:
    model = DemoModel()
    assert (week.soc_kwh >= 0).all()
    assert (week.soc_kwh <= model.battery_kwh + 1e-9).all()
    limit = model.battery_kw / 4 + 1e-9  # kWh per quarter hour
    assert (week.flows["battery:discharge"] <= limit).all()
    assert (week.flows["battery:charge"] <= limit).all()
    assert week.soc_kwh.max() > model.reserve * model.battery_kwh


def test_pv_is_zero_at_night_and_positive_at_noon(week: GeneratedData) -> None:
    slots = np.arange(week.start, week.stop)
    local_hour = ((slots * 900 + 3600) % 86_400) // 3600  # CET/CEST both fine for 0-3 and 11-13
    night = local_hour < 3
    assert (week.flows["pv:unit"][night] == 0).all()
    assert week.flows["pv:unit"][(local_hour >= 11) & (local_hour < 13)].sum() > 0


def test_sun_is_65_degrees_high_at_solar_noon_on_midsummer_in_vienna() -> None:
    # elevation at solar noon = 90 - latitude + declination = 90 - 48.2 + 23.44 = 65.24 degrees;
    # solar noon in Vienna (16.37 E) on 21 June is about 12:00 UTC - 65.5 min - (-1.7 min)
    noon = int(datetime(2025, 6, 21, 10, 56, tzinfo=ZoneInfo("UTC")).timestamp())
    clock = _Clock(noon - 30 * 60, 60, TZ)  # an hour around noon, minute by minute
    up = _sun_vector(clock, 48.2, 16.37)[2]
    assert math.degrees(math.asin(up.max())) == pytest.approx(65.24, abs=0.3)


# --------------------------------------------------------------------------------------------
# the files


def test_files_cover_all_three_import_formats(week: GeneratedData) -> None:
    names = {p.name for p in week.files}
    assert "site.toml" in names
    assert {"registers-2025-03.csv", "registers-2025-04.csv"} <= names
    assert {"phases-2025-03.csv", "intervals-2025-03.csv"} <= names
    assert set(week.sources.values()) == {"intervals", "phases", "irregular-registers", "registers"}


def test_sm2_inverted_meter_registers_are_swapped(week: GeneratedData, site: Site) -> None:
    """The incl. solar meter is inverted: the consumers' energy runs on its EXPORT register."""
    meter = _meter_key(site, "incl-solar")
    _, imp = _registers(week, meter, "1-0:1.8.0")
    _, exp = _registers(week, meter, "1-0:2.8.0")
    physical_import = week.import_kwh["incl-solar"].sum()
    assert physical_import > 50
    assert exp[-1] - exp[0] == pytest.approx(physical_import, abs=0.002)
    assert imp[-1] - imp[0] == pytest.approx(week.export_kwh["incl-solar"].sum(), abs=0.002)


def test_registers_are_cumulative_and_never_run_backwards(week: GeneratedData) -> None:
    df = _read(week, "registers").with_columns(pl.col("value").cast(pl.Float64))
    for (_meter, _obis), part in df.group_by(["meter", "obis"]):
        times = _epochs(part["time"])
        assert (np.diff(times) > 0).all()
        assert (np.diff(part["value"].to_numpy()) >= 0).all()


def test_registers_at_quarter_hours_match_the_slot_truth(week: GeneratedData, site: Site) -> None:
    meter = _meter_key(site, "apt-1")
    times, values = _registers(week, meter, "1-0:1.8.0")
    assert (times % 900 == 0).all()
    slots = times[:-1] // 900
    inside = (slots >= week.start) & (slots < week.stop) & (np.diff(times) == 900)
    truth = week.import_kwh["apt-1"][slots[inside] - week.start]
    np.testing.assert_allclose(np.diff(values)[inside], truth, rtol=0, atol=0.0011)


def test_tor_5_0b_phase_samples_integrate_to_the_slot_truth(
    week: GeneratedData, site: Site
) -> None:
    df = _read(week, "phases")
    meter = _meter_key(site, "excl-solar")
    assert set(df["meter"].unique().to_list()) == {meter}
    times = _epochs(df["time"])
    n = week.stop - week.start
    assert times[0] == week.start * 900 and times[-1] == week.stop * 900
    assert (np.diff(times) == 60).all()
    power = sum(df[c].cast(pl.Float64).to_numpy() for c in ("l1_kw", "l2_kw", "l3_kw"))
    held = power[:-1].reshape(n, 15)  # each sample holds one minute; the last ends the series
    registered_import = np.maximum(held, 0).sum(axis=1) / 60
    registered_export = np.maximum(-held, 0).sum(axis=1) / 60
    # the meter is inverted: what it registers as import is the physical export
    truth_import, truth_export = week.registered("excl-solar")
    np.testing.assert_allclose(registered_import, truth_import, rtol=0, atol=2e-3)
    np.testing.assert_allclose(registered_export, truth_export, rtol=0, atol=2e-3)
    # phases really differ in sign at times (unbalanced loads against symmetric PV)
    l1 = df["l1_kw"].cast(pl.Float64).to_numpy()
    l3 = df["l3_kw"].cast(pl.Float64).to_numpy()
    assert ((l1 > 0) & (l3 < 0)).any() or ((l1 < 0) & (l3 > 0)).any()


def test_intervals_of_the_grid_meter_match_the_truth(week: GeneratedData) -> None:
    df = _read(week, "intervals")
    ends = _epochs(df["end"])
    assert (ends == (np.arange(week.start, week.stop) + 1) * 900).all()
    point = week.site.location("hak").metering_points.import_
    assert set(df["metering_point"].to_list()) == {point}
    imp = df["import_kwh"].cast(pl.Float64).to_numpy()
    exp = df["export_kwh"].cast(pl.Float64).to_numpy()
    np.testing.assert_allclose(imp, week.import_kwh["hak"], rtol=0, atol=5.1e-4)
    np.testing.assert_allclose(exp, week.export_kwh["hak"], rtol=0, atol=5.1e-4)
    assert set(df["quality"].to_list()) == {"L1"}


def test_one_meter_reads_at_irregular_times_off_the_grid(week: GeneratedData, site: Site) -> None:
    times, _ = _registers(week, _meter_key(site, "pv-roof"), "1-0:2.8.0")
    assert (times % 900 != 0).all()
    steps = np.diff(times)
    assert steps.min() >= 300 - 46 and steps.max() <= 300 + 46
    assert times[0] < week.start * 900 and times[-1] > week.stop * 900


def test_tor_7_2_1_meter_exchange_in_site_file_and_readings(week: GeneratedData) -> None:
    ex = week.exchange
    assert ex is not None and ex.added and ex.location == "apt-2"
    again = load_site(week.site_file)
    meters = again.location("apt-2").meters
    assert [m.key for m in meters] == [ex.old_meter, ex.new_meter]
    removed, installed = meters[0].removed_at(TZ), meters[1].installed_at(TZ)
    assert removed is not None and int(removed.timestamp()) == ex.time
    assert int(installed.timestamp()) == ex.time
    assert ex.time % 900 != 0  # 10:37, inside a quarter hour
    old_t, old_v = _registers(week, ex.old_meter, "1-0:1.8.0")
    new_t, new_v = _registers(week, ex.new_meter, "1-0:1.8.0")
    assert old_t[-1] == ex.time and new_t[0] == ex.time and new_v[0] == 0.0
    counted = (old_v[-1] - old_v[0]) + (new_v[-1] - new_v[0])
    assert counted == pytest.approx(week.import_kwh["apt-2"].sum(), abs=0.003)


def test_gaps_of_a_few_hours_and_of_a_day(week: GeneratedData) -> None:
    assert len(week.gaps) == 2
    short, long = sorted(week.gaps, key=lambda g: g.end - g.begin)
    assert short.end - short.begin == 4 * 3600
    assert long.end - long.begin in (23 * 3600, 24 * 3600, 25 * 3600)
    for gap in week.gaps:
        times, _ = _registers(week, gap.meter, "1-0:1.8.0")
        assert not ((times > gap.begin) & (times < gap.end)).any()
        assert gap.begin in times and gap.end in times
        assert gap.stop_slot - gap.first_slot == (gap.end - gap.begin) // 900


def test_files_are_accepted_by_the_csv_import(week: GeneratedData) -> None:
    from lastgang.ingest.csv_readings import SiteIndex, parse_csv_readings

    index = SiteIndex(load_site(week.site_file))
    for path in week.files:
        if path.suffix == ".csv":
            parsed = parse_csv_readings(path.read_bytes(), index, path.name)
            assert parsed.rows > 0


def test_same_seed_gives_the_same_files(site: Site, week: GeneratedData, tmp_path: Path) -> None:
    again = generate_site_period(site, week.start, week.stop, tmp_path, seed=3)
    for a, b in zip(week.files, again.files, strict=True):
        assert a.name == b.name
        assert a.read_bytes() == b.read_bytes()


def test_tor_4_4_transformer_rated_meter_writes_secondary_values(
    site: Site, tmp_path: Path
) -> None:
    loc = site.location("incl-solar")
    ct_meter = loc.meters[0].model_copy(update={"ct": Transformer(ratio="100/5")})  # factor 20
    locations = [
        x.model_copy(update={"meters": [ct_meter]}) if x.id == "incl-solar" else x
        for x in site.locations
    ]
    ct_site = site.model_copy(update={"locations": locations})
    start, stop = period_slots(date(2025, 6, 2), date(2025, 6, 3), TZ)
    data = generate_site_period(ct_site, start, stop, tmp_path, seed=5)
    _, exp = _registers(data, ct_meter.key, "1-0:2.8.0")
    secondary = exp[-1] - exp[0]
    assert secondary * 20 == pytest.approx(data.import_kwh["incl-solar"].sum(), abs=0.003)
    assert load_site(data.site_file).location("incl-solar").meters[0].ct is not None


def test_site_to_toml_reads_back_equal(site: Site) -> None:
    from lastgang.concept.load import parse_site

    assert parse_site(site_to_toml(site, "header")) == site


def test_import_of_the_files_gives_back_the_truth(week: GeneratedData, tmp_path: Path) -> None:
    """The whole import path (store, CSV parsing, profile building) on the generated files:
    measured quarter hours match what the meters registered; substituted ones keep the gap's
    total (Q-2); the irregular meter is interpolated between readings 5 minutes apart."""
    from lastgang import services
    from lastgang.quality import Quality
    from lastgang.store import open_store

    store = open_store(tmp_path / "store.db")
    services.apply_site(store, week.site_file)
    services.import_files(store, week.site.site.id, [p for p in week.files if p.suffix == ".csv"])
    profiles = store.load_profiles(week.site.site.id, list(week.import_kwh), week.start, week.stop)
    for loc, profile in profiles.items():
        truth_import, truth_export = week.registered(loc)
        measured = profile.quality == Quality.L1
        tolerance = 0.025 if week.sources[loc] == "irregular-registers" else 0.0011
        for got, want in ((profile.import_kwh, truth_import), (profile.export_kwh, truth_export)):
            np.testing.assert_allclose(got[measured], want[measured], rtol=0, atol=tolerance)
            assert np.nansum(got) == pytest.approx(want.sum(), abs=0.01)
    for gap in week.gaps:
        quality = profiles[gap.location].quality
        inside = slice(gap.first_slot - week.start, gap.stop_slot - week.start)
        assert (quality[inside] == Quality.L2).all()
