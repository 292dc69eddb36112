"""Synthetic sites for the benchmark: M metering points x one year of quarter hours.

A site of ``M`` metering locations (Zählstellen) is a multi-tenant building or a community:

- ``hak``: the grid connection (Hausanschluss, role ``grid``), also the balance meter;
- ``pv01`` .. : ``max(1, M // 100)`` PV systems (role ``production``), owned by the unit
  ``owner`` that receives their feed-in credit;
- ``c0001`` .. : the other ``M - 1 - S`` locations are consumers, one billing unit each.

Every location has one meter (``BEN:B0000001`` ...) and metering point IDs, every consumer unit a
contract; every tenth unit changes tenant with a month of vacancy in June (billed to the owner).
Grid energy has a high and a low tariff with time windows, both with a price change on 1 July;
each PV has a local tariff and a feed-in tariff; a base fee is charged per unit and month.

The energies are deterministic for a seed: consumers have a base load, a morning and an evening
peak and noise; PV follows the sun over the day and the season with cloudy days; the grid
connection measures the difference. Interval values are written with three decimals (Wh), as
market data are; a few values per consumer are marked L2 (substitute values).

Nothing here is timed: :mod:`bench.cases` generates its inputs with these functions first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from lastgang.concept.model import Site
from lastgang.demo import site_to_toml
from lastgang.timegrid import end_labels, local_start_minutes, local_weekday, period_slots

__all__ = [
    "TZ",
    "YEAR",
    "SiteData",
    "build_site",
    "location_values",
    "register_csv",
    "site_data",
    "site_toml",
    "write_interval_csv",
    "write_interval_parquet",
    "write_register_csv",
]

FloatArray = NDArray[np.float64]

TZ = "Europe/Vienna"
YEAR = 2025
FIRST_DAY = date(YEAR, 1, 1)
LAST_DAY = date(YEAR, 12, 31)


def _mp_id(n: int) -> str:
    """A metering point ID (TOR-4.1, 33 characters) numbered ``n``."""
    return f"AT0081000801000000000{n:012d}"


def _meter(n: int) -> dict[str, Any]:
    return {
        "manufacturer": "BEN",
        "serial": f"B{n:07d}",
        "accuracy_class": "A",
        "installed": date(YEAR - 1, 1, 1),
        "verified": YEAR - 1,
        "validity_years": 8,
    }


def site_layout(m: int) -> tuple[int, int]:
    """(PV systems, consumers) of a site of ``m`` metering points (``m >= 3``)."""
    if m < 3:
        raise ValueError("a synthetic site needs at least 3 metering points")
    pv = max(1, m // 100)
    return pv, m - 1 - pv


def build_site(m: int, site_id: str | None = None) -> Site:
    """The configuration of a synthetic site of ``m`` metering points (see the module text)."""
    n_pv, n_cons = site_layout(m)
    locations: list[dict[str, Any]] = [
        {
            "id": "hak",
            "name": "Grid connection (HAK)",
            "role": "grid",
            "metering_points": {"import": _mp_id(1), "export": _mp_id(2)},
            "meters": [_meter(1)],
        }
    ]
    units: list[dict[str, Any]] = []
    tariffs: list[dict[str, Any]] = []
    pv_ids = [f"pv{k + 1:02d}" for k in range(n_pv)]
    for k, pv in enumerate(pv_ids):
        locations.append(
            {
                "id": pv,
                "name": f"PV {k + 1}",
                "role": "production",
                "upstream": "hak",
                "metering_points": {"export": _mp_id(10 + k)},
                "meters": [_meter(10 + k)],
            }
        )
        tariffs.append(
            {"id": f"solar-{pv}", "kind": "local", "meter": pv, "price": "0.1500", "vat": "0.20"}
        )
        tariffs.append(
            {"id": f"feed-{pv}", "kind": "feed-in", "meter": pv, "price": "0.0800", "vat": "0"}
        )
    units.append({"id": "owner", "name": "Owner (PV)", "kind": "commercial", "meters": pv_ids})
    contracts: list[dict[str, Any]] = [
        {"unit": "owner", "customer": "Owner", "start": date(YEAR - 1, 1, 1)}
    ]
    for i in range(n_cons):
        loc = f"c{i + 1:04d}"
        unit = f"u{i + 1:04d}"
        locations.append(
            {
                "id": loc,
                "name": f"Top {i + 1}",
                "role": "consumer",
                "upstream": "hak",
                "metering_points": {"import": _mp_id(1000 + i)},
                "meters": [_meter(1000 + i)],
            }
        )
        kind = "general" if i % 50 == 49 else "apartment"
        units.append({"id": unit, "name": f"Top {i + 1}", "kind": kind, "meters": [loc]})
        if i % 10 == 9:  # a tenant change with June vacant
            contracts.append(
                {
                    "unit": unit,
                    "customer": f"Tenant {i + 1}a",
                    "start": date(YEAR - 1, 1, 1),
                    "end": date(YEAR, 5, 31),
                }
            )
            contracts.append(
                {"unit": unit, "customer": f"Tenant {i + 1}b", "start": date(YEAR, 7, 1)}
            )
        else:
            contracts.append(
                {"unit": unit, "customer": f"Tenant {i + 1}", "start": date(YEAR - 1, 1, 1)}
            )
    windows = [
        {"days": "Mon-Fri", "from": "07:00", "to": "22:00"},
        {"days": "Sat", "from": "07:00", "to": "13:00"},
    ]
    half = date(YEAR, 7, 1)
    before = date(YEAR, 6, 30)
    for suffix, price_high, price_low, validity in (
        ("a", "0.2800", "0.2200", {"valid_to": before}),
        ("b", "0.3100", "0.2400", {"valid_from": half}),
    ):
        tariffs.append(
            {
                "id": f"grid-high-{suffix}",
                "name": "Grid energy, high tariff",
                "kind": "grid",
                "price": price_high,
                "windows": windows,
                **validity,
            }
        )
        tariffs.append(
            {
                "id": f"grid-low-{suffix}",
                "name": "Grid energy, low tariff",
                "kind": "grid",
                "price": price_low,
                **validity,
            }
        )
    return Site.model_validate(
        {
            "site": {"id": site_id or f"bench-{m}", "name": f"Benchmark site {m}", "timezone": TZ},
            "locations": locations,
            "units": units,
            "tariffs": tariffs,
            "fees": [{"id": "base", "name": "Base fee", "amount": "3.90", "vat": "0.20"}],
            "contracts": contracts,
            "billing": {"owner": "Owner", "balance_meter": "hak", "allocation": "smart-me"},
        }
    )


def site_toml(site: Site) -> str:
    """The site as the TOML text ``lastgang site apply`` reads."""
    return site_to_toml(site, "Synthetic benchmark site (bench/synthetic.py)")


@dataclass(frozen=True, eq=False)
class SiteData:
    """The year of a synthetic site: ``import_kwh``/``export_kwh[M, T]`` in site location order,
    rounded to the Wh, and ``quality[M, T]`` (1 = L1, 2 = L2)."""

    site: Site
    start: int
    stop: int
    import_kwh: FloatArray
    export_kwh: FloatArray
    quality: NDArray[np.int8]

    @property
    def locations(self) -> list[str]:
        return [loc.id for loc in self.site.locations]

    @property
    def values(self) -> int:
        """Metering points x slots."""
        return int(self.import_kwh.size)


def year_slots(days: int = 365) -> tuple[int, int]:
    """``[start, stop)`` of the benchmark period in the site's legal time: ``days`` local days
    from 1 January (the whole year: 35,040 slots)."""
    return period_slots(FIRST_DAY, FIRST_DAY + timedelta(days=days - 1), TZ)


def location_values(
    site: Site, start: int, stop: int, seed: int = 1
) -> tuple[FloatArray, FloatArray, NDArray[np.int8]]:
    """Import, export and quality ``[M, T]`` of every location of a synthetic site."""
    rng = np.random.default_rng(seed)
    n_pv, n_cons = site_layout(len(site.locations))
    slots = np.arange(start, stop, dtype=np.int64)
    t = len(slots)
    hours = local_start_minutes(slots, TZ) / 60.0 + 0.125
    weekend = local_weekday(slots, TZ) >= 5
    day = (slots - start) // 96
    season = 0.5 + 0.5 * np.cos(2 * np.pi * (day - 172) / 365.0)  # 1 in June, 0 in December
    # consumers: base load, morning and evening peaks, more at weekends, noise (kWh per slot)
    shape = (
        0.05
        + 0.10 * np.exp(-(((hours - 7.5) / 1.2) ** 2))
        + 0.18 * np.exp(-(((hours - 19.0) / 2.0) ** 2))
        + 0.03 * weekend
        + 0.04 * (1 - season)
    )
    scale = rng.uniform(0.5, 2.0, size=(n_cons, 1))
    noise = rng.gamma(4.0, 0.25, size=(n_cons, t))
    consumers = np.round(scale * shape[None, :] * noise, 3)
    # PV: the sun between about 6 and 18 h (longer in summer), cloudy days
    half_day = 4.5 + 3.0 * season
    sun = np.clip(np.cos(np.pi * (hours - 12.5) / (2 * half_day)), 0.0, None)
    sun[np.abs(hours - 12.5) > half_day] = 0.0
    clouds = rng.uniform(0.2, 1.0, size=day[-1] + 1)[day]
    kwp = rng.uniform(0.5, 1.5, size=(n_pv, 1)) * max(3.0, 0.8 * n_cons / n_pv)  # kWp each
    pv = np.round(kwp * 0.25 * (0.4 + 0.6 * season) * sun * clouds, 3)
    net = consumers.sum(axis=0) - pv.sum(axis=0)
    imp = np.zeros((1 + n_pv + n_cons, t))
    exp = np.zeros((1 + n_pv + n_cons, t))
    imp[0] = np.round(np.maximum(net, 0.0), 3)
    exp[0] = np.round(np.maximum(-net, 0.0), 3)
    exp[1 : 1 + n_pv] = pv
    imp[1 + n_pv :] = consumers
    quality = np.ones(imp.shape, dtype=np.int8)
    # a few substitute values (L2) per consumer: one afternoon in March
    quality[1 + n_pv :, 96 * 70 + 56 : 96 * 70 + 60] = 2
    return imp, exp, quality


def site_data(m: int, seed: int = 1, days: int = 365) -> SiteData:
    """Configuration and values of a synthetic site of ``m`` metering points for ``days`` days
    from 1 January (a year by default)."""
    site = build_site(m)
    start, stop = year_slots(days)
    imp, exp, quality = location_values(site, start, stop, seed)
    return SiteData(site, start, stop, imp, exp, quality)


def month_pieces(data: SiteData) -> Iterator[tuple[str, SiteData]]:
    """The site's values cut at the local month boundaries: ``("2025-01", the January values)``
    and so on (views, no copy)."""
    day = FIRST_DAY
    while True:
        following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        a, b = period_slots(day, following - timedelta(days=1), TZ)
        a, b = max(a, data.start), min(b, data.stop)
        if a >= b:
            return
        cols = slice(a - data.start, b - data.start)
        piece = SiteData(
            data.site,
            a,
            b,
            data.import_kwh[:, cols],
            data.export_kwh[:, cols],
            data.quality[:, cols],
        )
        yield f"{day:%Y-%m}", piece
        day = following


# --------------------------------------------------------------------------------------------
# input files


def _numbers(values: FloatArray) -> pl.Series:
    return pl.Series(np.round(values, 3) + 0.0).cast(pl.String)


def _mp_of(site: Site) -> list[str]:
    out = []
    for loc in site.locations:
        mp = loc.metering_points
        text = mp.import_ or mp.export
        assert text is not None
        out.append(text)
    return out


def _interval_frames(data: SiteData, rows: int = 1) -> Iterator[pl.DataFrame]:
    """One frame per location: ``end,metering_point,import_kwh,export_kwh,quality``."""
    labels = pl.Series("end", end_labels(data.start, data.stop, TZ))
    names = np.array(["", "L1", "L2", "L3", ""], dtype=object)
    for m, mp in enumerate(_mp_of(data.site)):
        yield pl.DataFrame(
            {
                "end": labels,
                "metering_point": pl.Series([mp]).extend_constant(mp, len(labels) - 1),
                "import_kwh": _numbers(data.import_kwh[m]),
                "export_kwh": _numbers(data.export_kwh[m]),
                "quality": pl.Series(names[data.quality[m]].tolist(), dtype=pl.String),
            }
        )


def write_interval_csv(data: SiteData, path: Path) -> int:
    """All interval values of the site-year as one CSV file (``docs/data-formats.md``), one
    metering point after the other. Returns the number of values (rows)."""
    with path.open("wb") as out:
        for m, frame in enumerate(_interval_frames(data)):
            frame.write_csv(out, include_header=m == 0)
    return data.values


def write_interval_parquet(data: SiteData, path: Path) -> int:
    """The values as one Parquet file in the long layout of a vendor table: one row per
    metering point ID (direction) and quarter hour, ``end`` (UTC timestamp of the period end),
    ``metering_point``, ``value`` (kWh), ``quality``. The grid connection has two IDs, so the
    file holds ``(M + 1) x T`` values. Returns that count."""
    ends = pl.Series("end", (np.arange(data.start, data.stop, dtype=np.int64) + 1) * 900_000)
    ends = ends.cast(pl.Datetime("ms", "UTC"))
    names = np.array(["", "L1", "L2", "L3", ""], dtype=object)
    frames = []
    for m, loc in enumerate(data.site.locations):
        quality = pl.Series("quality", names[data.quality[m]].tolist(), dtype=pl.String)
        for mp, values in (
            (loc.metering_points.import_, data.import_kwh[m]),
            (loc.metering_points.export, data.export_kwh[m]),
        ):
            if mp is None:
                continue
            frames.append(
                pl.DataFrame(
                    {
                        "end": ends,
                        "metering_point": pl.Series([mp]).extend_constant(mp, len(ends) - 1),
                        "value": np.round(values, 3) + 0.0,
                        "quality": quality,
                    }
                )
            )
    frame = pl.concat(frames)
    frame.write_parquet(path)
    return frame.height


def register_csv(data: SiteData) -> tuple[pl.DataFrame, int]:
    """Register readings (Zählerstände) every quarter hour for a year, as one CSV frame:
    ``time,meter,obis,value``. Import meters read 1-0:1.8.0 and 1-0:2.8.0 as their energies
    accumulate (kWh, 3 decimals). Returns the frame and the number of readings."""
    times = pl.Series("time", [_start_label(data.start)]).extend(
        pl.Series(end_labels(data.start, data.stop, TZ))
    )
    frames = []
    for m, loc in enumerate(data.site.locations):
        key = loc.meters[0].key
        for obis, values in (("1-0:1.8.0", data.import_kwh[m]), ("1-0:2.8.0", data.export_kwh[m])):
            register = np.round(1000.0 + np.concatenate(([0.0], np.cumsum(values))), 3)
            frames.append(
                pl.DataFrame(
                    {
                        "time": times,
                        "meter": pl.Series([key]).extend_constant(key, len(times) - 1),
                        "obis": pl.Series([obis]).extend_constant(obis, len(times) - 1),
                        "value": _numbers(register),
                    }
                )
            )
    frame = pl.concat(frames)
    return frame, frame.height


def write_register_csv(data: SiteData, path: Path) -> int:
    frame, count = register_csv(data)
    frame.write_csv(path)
    return count


def _start_label(slot: int) -> str:
    """The start of ``slot`` as a timestamp with offset (the end label of the slot before)."""
    return end_labels(slot - 1, slot, TZ)[0]
