"""A realistic period of meter data for a site, from a documented physical model.

The model (see ``docs/demo-data.md`` for every parameter and its source) runs minute by minute:

- **Sun and PV.** Sun position from latitude, longitude, day of year and time (NOAA's low-accuracy
  formulas), clear-sky irradiance (Meinel with the Kasten-Young air mass) on a tilted plane,
  times a cloud factor that varies by day (a seeded, persistent random walk with a seasonal mean)
  and within the day (smoothed noise, strongest on broken-cloud days). PV power = kWp x irradiance
  / 1000 W/m² x system efficiency x temperature derating, limited by the inverter.
- **Households** (Haushalte): the H0 standard load profile (``lastgang.profiles.slp``) scaled to
  each apartment's annual consumption, shifted by up to an hour per apartment, with persistent
  noise between quarter hours and spiky appliance use within them, unevenly spread over the
  three phases.
- **Common areas** (Allgemeinstrom): base load, stair lights while it is dark, and lift trips.
- **Heating** (Heizung, a heat pump): space heating proportional to the degrees below a heating
  limit of a modelled outdoor temperature (seasonal curve, daily swing, weather anomaly), night
  setback, on/off cycling at low load, domestic hot water twice a day, a circulation pump.
- **Emergency power unit** (Notstromgerät, SM-3): its own PV and a battery behind one inverter.
  It keeps the flow at its upstream meter near zero: surplus of its own PV charges the battery,
  a deficit is covered from the battery down to an emergency reserve; it charges from the grid
  when the battery falls below the reserve (in practice in winter), and it always draws a
  standby power.
  The battery respects capacity, power limits and efficiencies per quarter hour.

Every meter sees the signed sum of the flows behind it at each minute (per phase), and registers
import and export with instantaneous phase balancing (TOR-5.0b), so the grid meter's import minus
export equals the sum of everything behind it in every quarter hour. Inverted meters (SM-2)
register the other direction; the files hold what the meters register, secondary values for
transformer-rated meters (TOR-4.4).

The one Python loop runs over quarter hours (the battery's state of charge depends on the past);
everything else works on whole arrays.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from lastgang.concept.load import parse_site
from lastgang.concept.model import Location, Meter, Role, Site, UnitKind
from lastgang.errors import InvalidInput, Problem
from lastgang.profiles.slp import standard_load_profile
from lastgang.timegrid import SLOT_SECONDS, period_slots, to_epoch, utc_offsets, zone

if TYPE_CHECKING:
    from lastgang.report.charts import MonitoringData

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

__all__ = [
    "DemoModel",
    "Exchange",
    "Gap",
    "GeneratedData",
    "generate_site_period",
    "generate_site_year",
    "monitoring_data",
    "site_to_toml",
]

_MINUTE = 60
_PER_SLOT = SLOT_SECONDS // _MINUTE  # 15 minutes per slot
_MARGIN_SLOTS = 4  # the model runs one hour beyond both ends (readings just outside the period)

DataKind = Literal["registers", "irregular-registers", "phases", "intervals"]


# --------------------------------------------------------------------------------------------
# parameters


@dataclass(frozen=True)
class DemoModel:
    """Parameters of the physical model; every default is explained in ``docs/demo-data.md``."""

    # place (Vienna; the sun differs by minutes within Austria)
    latitude: float = 48.2
    longitude: float = 16.37
    # PV: the emergency power unit's own array, and every other PV location (kWp per location id)
    unit_pv_kwp: float = 8.0
    pv_kwp: Mapping[str, float] = field(default_factory=dict)
    default_pv_kwp: float = 5.0
    system_efficiency: float = 0.86  # inverter, wiring, soiling, mismatch
    temperature_coefficient: float = -0.004  # per kelvin of cell temperature above 25 °C
    # weather: daily clearness (1 = clear sky) around a seasonal mean, persistence over days
    clearness_winter: float = 0.40
    clearness_summer: float = 0.72
    clearness_spread: float = 0.26
    clearness_persistence: float = 0.6  # day-to-day correlation of the weather
    # outdoor temperature (°C): annual mean and amplitude (coldest around 20 January)
    temperature_mean: float = 10.8
    temperature_amplitude: float = 10.6
    # households: annual kWh per apartment, in the order of the apartments in the site file
    apartment_kwh: tuple[float, ...] = (3200.0, 2400.0, 4100.0, 1900.0, 2800.0, 3600.0)
    # common areas (general): kW
    general_base_kw: float = 0.06
    stair_light_kw: float = 0.12
    lift_kw: float = 4.0
    lift_trips_per_day: float = 20.0
    # heating: heat pump, electric kW per kelvin below the heating limit
    heating_kw_per_kelvin: float = 0.06
    heating_limit_c: float = 15.0
    heating_min_kw: float = 0.35  # below this the compressor cycles on and off
    hot_water_kw: float = 2.0
    hot_water_minutes: int = 40
    circulation_pump_kw: float = 0.04
    # emergency power unit (black box with battery and PV)
    battery_kwh: float = 10.0
    battery_kw: float = 5.0
    reserve: float = 0.2  # emergency reserve, fraction of the capacity kept for outages
    grid_charge_margin_kwh: float = 0.4  # charge from the grid when this far below the reserve
    grid_charge_kw: float = 2.0
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    standby_kw: float = 0.03  # AC draw of the unit (inverter, controller), always
    control_lag_minutes: int = 1  # the unit reacts to the load of a minute ago
    battery_self_kw: float = 0.01  # battery management system, drawn from the battery
    initial_soc: float = 0.5
    # which location delivers which kind of data (None: chosen from the site, see docs)
    phase_location: str | None = None
    irregular_location: str | None = None
    irregular_seconds: int = 300
    # register resolution: kWh decimals of direct meters, of transformer-rated (secondary) meters
    register_decimals: int = 3
    secondary_register_decimals: int = 4
    phase_decimals: int = 3  # kW to the watt
    interval_decimals: int = 3  # kWh to the watt-hour


@dataclass(frozen=True)
class Gap:
    """Readings left out on purpose: none strictly between ``begin`` and ``end`` (epoch seconds).

    ``first_slot`` .. ``stop_slot`` are the slots whose energy the meter's readings can no
    longer split (their total over the gap is still known from the readings around it)."""

    location: str
    meter: str
    begin: int
    end: int
    first_slot: int
    stop_slot: int


@dataclass(frozen=True)
class Exchange:
    """A meter exchange (Zählerwechsel, TOR-7.2.1) at ``location`` at instant ``time``."""

    location: str
    old_meter: str
    new_meter: str
    time: int
    added: bool  # True when the generator added it to the site (written to out_dir/site.toml)


@dataclass(frozen=True, eq=False)
class GeneratedData:
    """What :func:`generate_site_period` wrote, and the physical truth behind it.

    Energies are kWh per slot ``[start, stop)``, primary values, unrounded. ``import_kwh`` and
    ``export_kwh`` are PHYSICAL per location: import is the energy that flowed from the
    location's upstream side to its downstream side (towards the consumers), registered with
    instantaneous phase balancing (TOR-5.0b); an inverted meter's registers hold them swapped
    (:meth:`registered`). ``flows`` holds the devices behind the meters:

    - ``consumption:<location>``: energy used by each consumer location
    - ``pv:<location>`` and ``pv:unit``: PV production (AC) of each PV location and of the unit
    - ``unit:output`` and ``unit:draw``: the emergency power unit's AC output and its own draw
      (standby and charging from the grid while it has no output), per slot
    - ``battery:charge``, ``battery:discharge``, ``battery:grid_charge`` (AC side), ``unit:standby``

    ``production_kwh`` is the net production of the virtual production meter
    (incl. solar - excl. solar, SM-3), negative while the unit draws more than it gives.
    """

    site: Site
    site_file: Path
    start: int
    stop: int
    tz: str
    import_kwh: dict[str, FloatArray]
    export_kwh: dict[str, FloatArray]
    flows: dict[str, FloatArray]
    soc_kwh: FloatArray
    production_kwh: FloatArray
    sources: dict[str, DataKind]
    gaps: tuple[Gap, ...]
    exchange: Exchange | None
    files: tuple[Path, ...]
    production_location: str | None = None

    def net(self, location: str) -> FloatArray:
        """Physical import minus export of a location per slot."""
        out: FloatArray = self.import_kwh[location] - self.export_kwh[location]
        return out

    def registered(self, location: str) -> tuple[FloatArray, FloatArray]:
        """Import and export as the location's meters register them (swapped when inverted)."""
        loc = self.site.location(location)
        inverted = bool(loc.meters) and loc.meters[0].inverted
        if inverted:
            return self.export_kwh[location], self.import_kwh[location]
        return self.import_kwh[location], self.export_kwh[location]


# --------------------------------------------------------------------------------------------
# time features


@dataclass(frozen=True, eq=False)
class _Clock:
    """Minute grid of the model: minute ``k`` covers ``[t0 + 60 k, t0 + 60 (k+1))``."""

    t0: int
    minutes: int
    tz: str

    @property
    def n_slots(self) -> int:
        return self.minutes // _PER_SLOT

    def mid(self) -> IntArray:
        return self.t0 + _MINUTE * np.arange(self.minutes, dtype=np.int64) + _MINUTE // 2

    def local_hours(self) -> FloatArray:
        mid = self.mid()
        local = mid + utc_offsets(mid, self.tz)
        hours: FloatArray = (local % 86_400) / 3600.0
        return hours

    def utc_day(self) -> IntArray:
        day: IntArray = self.mid() // 86_400
        return day

    def day_of_year(self) -> IntArray:
        days = (self.mid() // 86_400).astype("datetime64[D]")
        doy: IntArray = (days - days.astype("datetime64[Y]")).astype(np.int64) + 1
        return doy


def _smooth_noise(rng: np.random.Generator, n: int, tau: float) -> FloatArray:
    """Gaussian noise with unit variance and correlation time ``tau`` samples (an AR(1)-like
    process made by convolving white noise with an exponential kernel)."""
    if tau <= 0.5:
        plain: FloatArray = rng.standard_normal(n)
        return plain
    length = min(max(int(6 * tau), 2), 4 * n + 2)
    kernel = np.exp(-np.arange(length) / tau)
    kernel /= math.sqrt(float((kernel**2).sum()))
    white = rng.standard_normal(n + length - 1)
    out: FloatArray = np.convolve(white, kernel, mode="valid")[:n]
    return out


# --------------------------------------------------------------------------------------------
# sun, weather, PV


def _sun_vector(clock: _Clock, latitude: float, longitude: float) -> FloatArray:
    """Unit vector towards the sun (east, north, up) per minute (NOAA low-accuracy formulas)."""
    mid = clock.mid()
    doy = clock.day_of_year().astype(np.float64)
    utc_minutes = (mid % 86_400) / 60.0
    gamma = 2 * np.pi / 365.0 * (doy - 1 + (utc_minutes / 60.0 - 12) / 24)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * np.cos(gamma)
        - 0.032077 * np.sin(gamma)
        - 0.014615 * np.cos(2 * gamma)
        - 0.040849 * np.sin(2 * gamma)
    )
    decl = (
        0.006918
        - 0.399912 * np.cos(gamma)
        + 0.070257 * np.sin(gamma)
        - 0.006758 * np.cos(2 * gamma)
        + 0.000907 * np.sin(2 * gamma)
        - 0.002697 * np.cos(3 * gamma)
        + 0.00148 * np.sin(3 * gamma)
    )
    solar_minutes = utc_minutes + eqtime + 4.0 * longitude
    hour_angle = np.radians(solar_minutes / 4.0 - 180.0)
    phi = math.radians(latitude)
    east = -np.cos(decl) * np.sin(hour_angle)
    north = np.sin(decl) * math.cos(phi) - np.cos(decl) * math.sin(phi) * np.cos(hour_angle)
    up = math.sin(phi) * np.sin(decl) + math.cos(phi) * np.cos(decl) * np.cos(hour_angle)
    return np.stack([east, north, up])


def _clear_sky_poa(sun: FloatArray, tilt_deg: float, azimuth_deg: float) -> FloatArray:
    """Clear-sky irradiance in W/m² on a plane tilted ``tilt_deg`` facing ``azimuth_deg``
    (from north, clockwise; 180 = south)."""
    up = sun[2]
    above = up > 0.0
    zenith_deg = np.degrees(np.arccos(np.clip(up, -1.0, 1.0)))
    air_mass = 1.0 / (
        np.maximum(up, 1e-6) + 0.50572 * np.maximum(96.07995 - zenith_deg, 1e-3) ** -1.6364
    )
    dni = np.where(above, 1353.0 * 0.7 ** (air_mass**0.678), 0.0)
    dhi = 0.1 * dni
    ghi = dni * np.maximum(up, 0.0) + dhi
    beta, alpha = math.radians(tilt_deg), math.radians(azimuth_deg)
    normal = np.array([math.sin(beta) * math.sin(alpha), math.sin(beta) * math.cos(alpha)])
    cos_incidence = normal[0] * sun[0] + normal[1] * sun[1] + math.cos(beta) * up
    poa = (
        dni * np.maximum(cos_incidence, 0.0)
        + dhi * (1 + math.cos(beta)) / 2
        + 0.2 * ghi * (1 - math.cos(beta)) / 2
    )
    result: FloatArray = np.where(above, poa, 0.0)
    return result


@dataclass(frozen=True, eq=False)
class _Weather:
    clearness_day: FloatArray  # per UTC day of the model
    cloud: FloatArray  # per minute, multiplies clear-sky irradiance
    temperature: FloatArray  # per minute, °C
    sun: FloatArray  # (3, minutes)


def _weather(clock: _Clock, model: DemoModel, rng: np.random.Generator) -> _Weather:
    day = clock.utc_day()
    first = int(day[0])
    n_days = int(day[-1]) - first + 1
    day_index = day - first
    days = np.arange(first, first + n_days, dtype=np.int64).astype("datetime64[D]")
    doy_day = (days - days.astype("datetime64[Y]")).astype(np.float64) + 1
    summer = 0.5 - 0.5 * np.cos(2 * np.pi * (doy_day - 15) / 365.25)  # 0 mid-Jan .. 1 mid-Jul
    mean = model.clearness_winter + (model.clearness_summer - model.clearness_winter) * summer
    tau_days = -1.0 / math.log(model.clearness_persistence)
    z = _smooth_noise(rng, n_days, tau_days)
    clearness = np.clip(mean + model.clearness_spread * z, 0.05, 1.0)
    # within the day: broken clouds move fastest on days between clear and overcast
    k = clearness[day_index]
    variability = 4.0 * k * (1.0 - k)
    wiggle = _smooth_noise(rng, clock.minutes, 20.0)
    flicker = _smooth_noise(rng, clock.minutes, 2.0)
    cloud = np.clip(k + variability * (0.35 * wiggle + 0.15 * flicker), 0.03, 1.1)
    # outdoor temperature: season, daily swing (larger on clear days), weather anomaly
    doy = clock.day_of_year().astype(np.float64)
    season = model.temperature_mean - model.temperature_amplitude * np.cos(
        2 * np.pi * (doy - 20) / 365.25
    )
    anomaly_day = 2.5 * _smooth_noise(rng, n_days, 3.0)
    coupling = 6.0 * (clearness - mean) * np.cos(2 * np.pi * (doy_day - 196) / 365.25)
    hours = clock.local_hours()
    swing = (2.5 + 4.0 * k) * np.cos(2 * np.pi * (hours - 15.0) / 24.0)
    temperature = season + (anomaly_day + coupling)[day_index] + swing
    sun = _sun_vector(clock, model.latitude, model.longitude)
    return _Weather(clearness, cloud, temperature, sun)


def _pv_power(
    weather: _Weather, kwp: float, tilt: float, azimuth: float, model: DemoModel
) -> FloatArray:
    """AC power in kW of a PV array per minute."""
    poa = _clear_sky_poa(weather.sun, tilt, azimuth) * weather.cloud
    cell = weather.temperature + 0.03 * poa
    derate = 1.0 + model.temperature_coefficient * (cell - 25.0)
    power = kwp * poa / 1000.0 * model.system_efficiency * derate
    result: FloatArray = np.clip(power, 0.0, 0.95 * kwp)
    return result


# --------------------------------------------------------------------------------------------
# consumers


@dataclass(eq=False)
class _Device:
    """A flow behind the meters: ``total`` kW per minute, signed (consumption positive), and its
    split over L1, L2, L3: ``weights`` with shape (3, 1), (3, slots) or (3, minutes)."""

    name: str
    total: FloatArray
    weights: FloatArray

    def phases(self) -> FloatArray:
        w = self.weights
        n = self.total.shape[0]
        if w.shape[1] not in (1, n):
            w = np.repeat(w, n // w.shape[1], axis=1)
        out: FloatArray = self.total * w
        return out


_EVEN = np.full((3, 1), 1.0 / 3.0)


def _household(
    clock: _Clock, start_slot: int, annual_kwh: float, rng: np.random.Generator
) -> _Device:
    n = clock.n_slots
    shape = standard_load_profile("H0", start_slot, start_slot + n, clock.tz, annual_kwh)
    shift = int(rng.integers(-2, 5))  # habits: -30 .. +60 minutes against the profile
    shape = np.roll(shape, shift)
    sigma = 0.5
    factor = np.exp(sigma * _smooth_noise(rng, n, 4.0) - sigma**2 / 2)
    slot_kwh = shape * factor
    # within the quarter hour: half steady, half in appliance bursts (Dirichlet weights)
    bursts = rng.gamma(0.4, size=(n, _PER_SLOT)) + 1e-12
    bursts /= bursts.sum(axis=1, keepdims=True)
    minute_share = 0.5 / _PER_SLOT + 0.5 * bursts  # sums to 1 per slot
    total = (slot_kwh[:, None] * minute_share * 60.0).ravel()  # kWh per minute x 60 = kW
    weights = rng.dirichlet([1.5, 1.5, 1.5], size=n).T * 0.7 + 0.1
    return _Device("household", total, weights)


def _general(
    clock: _Clock, weather: _Weather, model: DemoModel, rng: np.random.Generator
) -> _Device:
    hours = clock.local_hours()
    dark = weather.sun[2] < math.sin(math.radians(3.0))
    busy = np.where((hours >= 6) & (hours < 23), 0.6, 0.15)
    lights = model.stair_light_kw * dark * (rng.random(clock.minutes) < busy)
    daytime = (hours >= 6) & (hours < 22)
    p_trip = model.lift_trips_per_day / (16 * 60)
    start = daytime & (rng.random(clock.minutes) < p_trip)
    lift = model.lift_kw * np.minimum(start + np.roll(start, 1), 1)  # a trip lasts 2 minutes
    base = np.full(clock.minutes, model.general_base_kw)
    total = base + lights + lift
    safe = np.where(total > 0, total, 1.0)
    l1 = (base / 3 + lights + lift / 3) / safe
    other = (base / 3 + lift / 3) / safe
    return _Device("general", total, np.stack([l1, other, other]))


def _heating(
    clock: _Clock, weather: _Weather, model: DemoModel, rng: np.random.Generator
) -> _Device:
    hours = clock.local_hours()
    deficit = np.maximum(model.heating_limit_c - weather.temperature, 0.0)
    night = (hours >= 22) | (hours < 5)
    demand = model.heating_kw_per_kelvin * deficit * np.where(night, 0.8, 1.0)
    # on/off cycling below the minimum compressor power (period 30 minutes)
    minute = np.arange(clock.minutes) + int(rng.integers(0, 30))
    duty = np.clip(demand / model.heating_min_kw, 0.0, 1.0)
    cycling = np.where((minute % 30) < duty * 30, model.heating_min_kw, 0.0)
    space = np.where(demand >= model.heating_min_kw, demand, cycling)
    # domestic hot water: 05:30 and 17:30 local, a few minutes of jitter per day
    jitter = (rng.integers(-10, 11, size=clock.utc_day()[-1] - clock.utc_day()[0] + 1) / 60.0)[
        clock.utc_day() - clock.utc_day()[0]
    ]
    length = model.hot_water_minutes / 60.0
    hot = np.zeros(clock.minutes, dtype=bool)
    for begin in (5.5, 17.5):
        since = hours - (begin + jitter)
        hot |= (since >= 0) & (since < length)
    water = np.where(hot, model.hot_water_kw, 0.0)
    season = deficit > 0
    pump = np.where(season, model.circulation_pump_kw, 0.0)
    total = space + water + pump
    safe = np.where(total > 0, total, 1.0)
    l1 = ((space + water) / 3 + pump) / safe
    other = ((space + water) / 3) / safe
    return _Device("heating", total, np.stack([l1, other, other]))


# --------------------------------------------------------------------------------------------
# the emergency power unit


@dataclass(frozen=True, eq=False)
class _Unit:
    output: FloatArray  # kW per minute, AC: PV + discharge - charge - standby (negative = draw)
    pv: FloatArray
    charge: FloatArray  # kW per minute into the battery (AC side), PV surplus and grid
    grid_charge: FloatArray
    discharge: FloatArray
    standby: FloatArray
    soc: FloatArray  # kWh at the end of each slot


def _unit(pv: FloatArray, behind: FloatArray, model: DemoModel) -> _Unit:
    """Dispatch of the unit's battery: keep ``behind + unit draw`` (the flow at the upstream
    meter) near zero. ``behind`` is the signed power of everything else behind the upstream
    meter (consumers positive, other PV negative)."""
    minutes = pv.shape[0]
    n = minutes // _PER_SLOT
    standby = np.full(minutes, model.standby_kw)
    lag = max(model.control_lag_minutes, 0)
    seen = np.concatenate((np.repeat(behind[:1], lag), behind[: minutes - lag])) if lag else behind
    desired = np.clip(pv - standby - seen, -model.battery_kw, model.battery_kw)
    # the battery charges from the unit's own PV only (the grid only to keep the reserve)
    want_charge = np.minimum(np.maximum(desired, 0.0), np.maximum(pv - standby, 0.0))
    want_discharge = np.maximum(-desired, 0.0)
    c_slot = want_charge.reshape(n, _PER_SLOT).sum(axis=1) / 60.0
    d_slot = want_discharge.reshape(n, _PER_SLOT).sum(axis=1) / 60.0
    cap = model.battery_kwh
    floor = model.reserve * cap
    trigger = floor - model.grid_charge_margin_kwh
    target = floor + 0.5
    eta_c, eta_d = model.charge_efficiency, model.discharge_efficiency
    own = model.battery_self_kw * 0.25
    grid_step = model.grid_charge_kw * 0.25
    f_c = np.zeros(n)
    f_d = np.zeros(n)
    grid = np.zeros(n)
    soc_end = np.zeros(n)
    soc = model.initial_soc * cap
    charging = False
    for s in range(n):  # sequential by nature: the state of charge carries over
        c = float(c_slot[s])
        d = float(d_slot[s])
        if soc < trigger and c < 1e-9:
            charging = True
        if charging and (soc >= target or c > 1e-9):
            charging = False
        g = 0.0
        fd = 1.0
        if charging:
            g = min(grid_step, (target - soc) / eta_c)
            fd = 0.0
        elif d > 0:
            fd = min(1.0, max(0.0, (soc + eta_c * c - own - floor) * eta_d / d))
        fc = 1.0
        if c > 0:
            room = cap - soc + fd * d / eta_d + own - eta_c * g
            fc = min(1.0, max(0.0, room / (eta_c * c)))
        soc = soc + eta_c * (fc * c + g) - fd * d / eta_d - own
        soc = min(max(soc, 0.0), cap)
        f_c[s], f_d[s], grid[s], soc_end[s] = fc, fd, g, soc
    grid_kw = np.repeat(grid * 4.0, _PER_SLOT)
    charge = want_charge * np.repeat(f_c, _PER_SLOT) + grid_kw
    discharge = want_discharge * np.repeat(f_d, _PER_SLOT)
    output = pv + discharge - charge - standby
    return _Unit(output, pv, charge, grid_kw, discharge, standby, soc_end)


# --------------------------------------------------------------------------------------------
# the site: wiring, kinds of consumers, PV


@dataclass(frozen=True)
class _Topology:
    grid: str | None
    excl: str | None
    incl: str | None
    production: str | None  # the virtual production meter
    kinds: dict[str, str]  # consumer location -> household | general | heating
    pvs: tuple[str, ...]
    children: dict[str, tuple[str, ...]]
    roots: tuple[str, ...]


_DIFFERENCE = re.compile(r"\s*([A-Za-z][A-Za-z0-9_\-]*)\s+-\s+([A-Za-z][A-Za-z0-9_\-]*)\s*")


def _topology(site: Site) -> _Topology:
    ids = {loc.id for loc in site.locations}
    grid = next((loc.id for loc in site.locations if loc.role is Role.GRID), None)
    excl = incl = production = None
    for vm in site.virtual_meters:
        m = _DIFFERENCE.fullmatch(vm.formula)
        if vm.role is Role.PRODUCTION and m and m[1] in ids and m[2] in ids:
            incl, excl, production = m[1], m[2], vm.id
            break
    unit_kind: dict[str, UnitKind] = {}
    for unit in site.units:
        for meter_id in unit.meters:
            unit_kind.setdefault(meter_id, unit.kind)
    kinds: dict[str, str] = {}
    for loc in site.locations:
        if loc.role is Role.CONSUMER:
            kind = unit_kind.get(loc.id, UnitKind.APARTMENT)
            if kind in (UnitKind.HEATING, UnitKind.HEAT_PUMP):
                kinds[loc.id] = "heating"
            elif kind is UnitKind.GENERAL:
                kinds[loc.id] = "general"
            else:
                kinds[loc.id] = "household"
    children: dict[str, list[str]] = {loc.id: [] for loc in site.locations}
    roots: list[str] = []
    for loc in site.locations:
        parent = loc.upstream if loc.upstream in ids else None
        if parent is None and loc.role is not Role.GRID and grid is not None:
            parent = grid
        if parent is None or parent == loc.id:
            roots.append(loc.id)
        else:
            children[parent].append(loc.id)
    pvs = tuple(
        loc.id
        for loc in site.locations
        if loc.id not in (excl, incl)
        and not children[loc.id]
        and (
            loc.role is Role.PRODUCTION
            or (
                loc.role in (Role.TECHNICAL, Role.STORAGE)
                and re.search(r"pv|solar|photovolt", f"{loc.id} {loc.name}", re.IGNORECASE)
            )
        )
    )
    return _Topology(
        grid,
        excl,
        incl,
        production,
        kinds,
        pvs,
        {k: tuple(v) for k, v in children.items()},
        tuple(roots),
    )


def _subtree(top: _Topology, location: str) -> list[str]:
    out = [location]
    for child in top.children[location]:
        out.extend(_subtree(top, child))
    return out


# --------------------------------------------------------------------------------------------
# site changes: a meter exchange, written as TOML


def _serial_after(serial: str) -> str:
    m = re.fullmatch(r"(.*?)(\d+)", serial)
    if m is None:
        return serial + "R"
    number = str(int(m[2]) + 50).zfill(len(m[2]))
    return m[1] + number


def _meter_window(meter: Meter, tz: str) -> tuple[int, int | None]:
    removed = meter.removed_at(tz)
    return to_epoch(meter.installed_at(tz)), None if removed is None else to_epoch(removed)


def _existing_exchange(site: Site, lo: int, hi: int, tz: str) -> Exchange | None:
    for loc in site.locations:
        windows = sorted((_meter_window(m, tz), m.key) for m in loc.meters)
        for ((_, end), old), ((begin, _), new) in itertools.pairwise(windows):
            if end is not None and lo < begin < hi:
                return Exchange(loc.id, old, new, begin, added=False)
    return None


def _add_exchange(site: Site, location: str, when: datetime) -> tuple[Site, Exchange]:
    loc = site.location(location)
    old = loc.meters[-1]
    new = old.model_copy(
        update={
            "serial": _serial_after(old.serial),
            "installed": when,
            "removed": None,
            "verified": when.year,
        }
    )
    meters = [*loc.meters[:-1], old.model_copy(update={"removed": when}), new]
    locations = [
        x.model_copy(update={"meters": meters}) if x.id == location else x for x in site.locations
    ]
    changed = site.model_copy(update={"locations": locations})
    return changed, Exchange(location, old.key, new.key, to_epoch(when), added=True)


_BARE_KEY = re.compile(r"[A-Za-z0-9_\-]+")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\t", "\\t")
        .replace("\r", "\\r")
    )
    return f'"{escaped}"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return _toml_value(value.value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return _toml_string(str(value))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat()
        return value.isoformat(timespec="seconds")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, Iterable):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_table(data: Mapping[str, Any], path: str, lines: list[str]) -> None:
    """Scalars first, then sub-tables, then arrays of tables (TOML's order rules)."""
    tables: list[tuple[str, Mapping[str, Any]]] = []
    arrays: list[tuple[str, list[Mapping[str, Any]]]] = []
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            arrays.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, table in tables:
        name = f"{path}.{_toml_key(key)}" if path else _toml_key(key)
        lines.extend(["", f"[{name}]"])
        _toml_table(table, name, lines)
    for key, items in arrays:
        name = f"{path}.{_toml_key(key)}" if path else _toml_key(key)
        for item in items:
            lines.extend(["", f"[[{name}]]"])
            _toml_table(item, name, lines)


def site_to_toml(site: Site, header: str = "") -> str:
    """A site configuration as TOML text that :func:`lastgang.concept.load.parse_site` reads
    back to an equal :class:`Site` (checked; raises :class:`InvalidInput` otherwise)."""
    data = site.model_dump(mode="python", by_alias=True, exclude_none=True, exclude_defaults=True)
    # the [site] table in full (time zone and currency are worth seeing), and first
    full = site.site.model_dump(mode="python", exclude_none=True)
    data = {"site": full, **{k: v for k, v in data.items() if k != "site"}}
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    _toml_table(data, "", lines)
    text = "\n".join(lines).lstrip("\n") + "\n"
    again = parse_site(text, "<generated site>")
    if again != site:
        raise InvalidInput(
            "the site configuration does not survive writing it as TOML",
            [Problem("a field is written in a form the loader reads differently")],
        )
    return text


# --------------------------------------------------------------------------------------------
# the model of one period


@dataclass(frozen=True, eq=False)
class _Flows:
    clock: _Clock
    power: dict[str, FloatArray]  # per location, signed kW per minute (import positive)
    devices: dict[str, list[_Device]]  # devices attached at each location
    unit: _Unit | None
    pv: dict[str, FloatArray]
    consumption: dict[str, FloatArray]


def _model_flows(
    site: Site, top: _Topology, clock: _Clock, start_slot: int, model: DemoModel, seed: int
) -> _Flows:
    weather = _weather(clock, model, np.random.default_rng([seed, 1]))
    devices: dict[str, list[_Device]] = {loc.id: [] for loc in site.locations}
    consumption: dict[str, FloatArray] = {}
    apartment = 0
    for loc in site.locations:
        kind = top.kinds.get(loc.id)
        sub = np.random.default_rng([seed, 2, len(consumption)])
        if kind == "household":
            kwh = model.apartment_kwh[apartment % len(model.apartment_kwh)]
            apartment += 1
            device = _household(clock, start_slot, kwh, sub)
        elif kind == "general":
            device = _general(clock, weather, model, sub)
        elif kind == "heating":
            device = _heating(clock, weather, model, sub)
        else:
            continue
        devices[loc.id].append(device)
        consumption[loc.id] = device.total
    pv: dict[str, FloatArray] = {}
    for index, loc_id in enumerate(top.pvs):
        kwp = model.pv_kwp.get(loc_id, model.default_pv_kwp)
        tilt, azimuth = (15.0, 200.0) if index % 2 == 0 else (25.0, 160.0)
        pv_kw = _pv_power(weather, kwp, tilt, azimuth, model)
        pv[loc_id] = pv_kw
        devices[loc_id].append(_Device("pv", -pv_kw, _EVEN))
    unit: _Unit | None = None
    if top.excl is not None:
        behind = np.zeros(clock.minutes)
        for loc_id in _subtree(top, top.excl):
            for device in devices[loc_id]:
                behind += device.total
        unit_pv = _pv_power(weather, model.unit_pv_kwp, 30.0, 180.0, model)
        unit = _unit(unit_pv, behind, model)
        pv["unit"] = unit_pv
        devices[top.excl].append(_Device("unit", -unit.output, _EVEN))
    power: dict[str, FloatArray] = {}

    def total(loc_id: str) -> FloatArray:
        out = np.zeros(clock.minutes)
        for device in devices[loc_id]:
            out += device.total
        for child in top.children[loc_id]:
            out += total(child)
        power[loc_id] = out
        return out

    for root in top.roots:
        total(root)
    return _Flows(clock, power, devices, unit, pv, consumption)


def _phase_power(flows: _Flows, top: _Topology, location: str) -> FloatArray:
    out = np.zeros((3, flows.clock.minutes))
    for loc_id in _subtree(top, location):
        for device in flows.devices[loc_id]:
            out += device.phases()
    return out


def _slot_sum(minute_kw: FloatArray) -> FloatArray:
    """kWh per slot of a per-minute kW series (15 minutes per slot)."""
    out: FloatArray = minute_kw.reshape(-1, _PER_SLOT).sum(axis=1) / 60.0
    return out


# --------------------------------------------------------------------------------------------
# writing the files


def _local_text(epochs: IntArray, tz: str) -> pl.Series:
    return (
        pl.Series(np.asarray(epochs, dtype=np.int64) * 1000)
        .cast(pl.Datetime("ms"))
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(tz)
        .dt.to_string("%Y-%m-%dT%H:%M:%S%:z")
    )


def _month_keys(epochs: IntArray, lo: int, hi: int, tz: str) -> pl.Series:
    clamped = np.clip(np.asarray(epochs, dtype=np.int64), lo, hi - 1)
    return (
        pl.Series(clamped * 1000)
        .cast(pl.Datetime("ms"))
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(tz)
        .dt.to_string("%Y-%m")
    )


def _numbers(values: FloatArray, decimals: int) -> pl.Series:
    rounded = np.round(np.asarray(values, dtype=np.float64), decimals) + 0.0  # no "-0.0"
    return pl.Series(rounded).cast(pl.String)


def _write_monthly(
    frames: list[pl.DataFrame], kind: str, columns: list[str], out_dir: Path
) -> list[Path]:
    if not frames:
        return []
    df = pl.concat(frames).sort(["_epoch", "_order"], maintain_order=True)
    paths: list[Path] = []
    for (month,), part in df.group_by(["_month"], maintain_order=True):
        path = out_dir / f"{kind}-{month}.csv"
        part.select(columns).write_csv(path)
        paths.append(path)
    return sorted(paths)


@dataclass(frozen=True, eq=False)
class _Cumulative:
    """Registered import/export energy since the model's first minute, at minute boundaries."""

    t0: int
    imp: FloatArray
    exp: FloatArray

    def at(self, epochs: IntArray) -> tuple[FloatArray, FloatArray]:
        x = (np.asarray(epochs, dtype=np.float64) - self.t0) / _MINUTE
        grid = np.arange(self.imp.shape[0], dtype=np.float64)
        return np.interp(x, grid, self.imp), np.interp(x, grid, self.exp)


def _cumulative(power_kw: FloatArray, t0: int) -> _Cumulative:
    imp = np.concatenate(([0.0], np.cumsum(np.maximum(power_kw, 0.0)) / 60.0))
    exp = np.concatenate(([0.0], np.cumsum(np.maximum(-power_kw, 0.0)) / 60.0))
    return _Cumulative(t0, imp, exp)


# --------------------------------------------------------------------------------------------
# the public functions


def generate_site_year(
    site: Site, year: int, out_dir: Path, *, seed: int = 1, model: DemoModel | None = None
) -> GeneratedData:
    """A year (local calendar year ``year``) of meter data for ``site`` in ``out_dir``.

    See :func:`generate_site_period`."""
    start, stop = period_slots(date(year, 1, 1), date(year, 12, 31), site.site.timezone)
    return generate_site_period(site, start, stop, out_dir, seed=seed, model=model)


def generate_site_period(
    site: Site,
    start: int,
    stop: int,
    out_dir: Path,
    *,
    seed: int = 1,
    model: DemoModel | None = None,
) -> GeneratedData:
    """Meter data for the slots ``[start, stop)`` of ``site`` written to ``out_dir``.

    Writes, one file per local month and kind (``docs/demo-data.md``):

    - ``site.toml``: the site the data belongs to: ``site`` itself, or, when ``site`` has no
      meter exchange in the period, ``site`` with one added (an apartment's meter replaced);
    - ``registers-YYYY-MM.csv``: cumulative ``1-0:1.8.0``/``1-0:2.8.0`` readings at every
      quarter hour, for one meter at irregular times (about every 5 minutes, off the grid);
    - ``phases-YYYY-MM.csv``: L1, L2, L3 power every minute of one meter;
    - ``intervals-YYYY-MM.csv``: 15-minute import/export of the grid connection's metering
      point (what the grid operator delivers).

    The same ``seed`` gives the same files.
    """
    model = model or DemoModel()
    tz = site.site.timezone
    zone(tz)
    if stop <= start:
        raise InvalidInput(f"empty period: slots [{start}, {stop})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lo, hi = start * SLOT_SECONDS, stop * SLOT_SECONDS
    first_slot = start - _MARGIN_SLOTS
    n_ext = stop - start + 2 * _MARGIN_SLOTS
    clock = _Clock(first_slot * SLOT_SECONDS, n_ext * _PER_SLOT, tz)

    top = _topology(site)
    exchange = _existing_exchange(site, lo, hi, tz)
    if exchange is None:
        apartments = [k for k, v in top.kinds.items() if v == "household"]
        candidates = apartments or list(top.kinds)
        if candidates:
            where = candidates[-1]
            when = _exchange_time(lo, hi, tz)
            site, exchange = _add_exchange(site, where, when)
    top = _topology(site)

    flows = _model_flows(site, top, clock, first_slot, model, seed)
    inner = slice(_MARGIN_SLOTS, _MARGIN_SLOTS + stop - start)
    import_kwh: dict[str, FloatArray] = {}
    export_kwh: dict[str, FloatArray] = {}
    for loc_id, p in flows.power.items():
        import_kwh[loc_id] = _slot_sum(np.maximum(p, 0.0))[inner]
        export_kwh[loc_id] = _slot_sum(np.maximum(-p, 0.0))[inner]
    truth: dict[str, FloatArray] = {}
    for loc_id, p in flows.consumption.items():
        truth[f"consumption:{loc_id}"] = _slot_sum(p)[inner]
    for name, p in flows.pv.items():
        truth[f"pv:{name}"] = _slot_sum(p)[inner]
    soc = np.zeros(stop - start)
    if flows.unit is not None:
        u = flows.unit
        truth["unit:output"] = _slot_sum(np.maximum(u.output, 0.0))[inner]
        truth["unit:draw"] = _slot_sum(np.maximum(-u.output, 0.0))[inner]
        truth["unit:standby"] = _slot_sum(u.standby)[inner]
        truth["battery:charge"] = _slot_sum(u.charge)[inner]
        truth["battery:discharge"] = _slot_sum(u.discharge)[inner]
        truth["battery:grid_charge"] = _slot_sum(u.grid_charge)[inner]
        soc = u.soc[inner].copy()
    if top.incl is not None and top.excl is not None:
        production = (import_kwh[top.incl] - export_kwh[top.incl]) - (
            import_kwh[top.excl] - export_kwh[top.excl]
        )
    else:
        production = np.zeros(stop - start)

    sources = _choose_sources(site, top, model)
    gaps = _choose_gaps(site, top, sources, exchange, lo, hi, tz)
    files = _write_files(site, top, flows, sources, gaps, lo, hi, out_dir, model, seed)
    header = (
        f"Site configuration of the generated data in this folder (lastgang demo, seed {seed}).\n"
    )
    if exchange is not None and exchange.added:
        header += (
            f"It is site {site.site.id!r} with a meter exchange added: at location "
            f"{exchange.location!r} meter {exchange.old_meter} was replaced by "
            f"{exchange.new_meter}.\n"
        )
    site_file = out_dir / "site.toml"
    site_file.write_text(site_to_toml(site, header), encoding="utf-8")
    return GeneratedData(
        site=site,
        site_file=site_file,
        start=start,
        stop=stop,
        tz=tz,
        import_kwh=import_kwh,
        export_kwh=export_kwh,
        flows=truth,
        soc_kwh=soc,
        production_kwh=production,
        sources=sources,
        gaps=tuple(gaps),
        exchange=exchange,
        files=(site_file, *files),
        production_location=top.production,
    )


def _exchange_time(lo: int, hi: int, tz: str) -> datetime:
    """10:37 legal time on the day at 55 % of the period (an ordinary working hour)."""
    zi = zone(tz)
    middle = datetime.fromtimestamp(lo + (hi - lo) * 55 // 100, zi)
    when = datetime.combine(middle.date(), time(10, 37), tzinfo=zi)
    epoch = to_epoch(when)
    if not lo < epoch < hi:
        when = datetime.fromtimestamp((lo + hi) // 2 // 60 * 60 + 7 * 60, zi)
    return datetime.fromtimestamp(to_epoch(when), zi)


def _choose_sources(site: Site, top: _Topology, model: DemoModel) -> dict[str, DataKind]:
    ids = [loc.id for loc in site.locations]
    sources: dict[str, DataKind] = {}
    phase = model.phase_location or top.excl or top.grid
    irregular = model.irregular_location or (top.pvs[0] if top.pvs else None)
    for loc in site.locations:
        if not loc.meters:
            continue
        if loc.id == top.grid and (loc.metering_points.import_ or loc.metering_points.export):
            sources[loc.id] = "intervals"
        elif loc.id == phase:
            sources[loc.id] = "phases"
        elif loc.id == irregular:
            sources[loc.id] = "irregular-registers"
        else:
            sources[loc.id] = "registers"
    unknown = [x for x in (model.phase_location, model.irregular_location) if x and x not in ids]
    if unknown:
        raise InvalidInput(f"demo model names unknown location(s): {', '.join(unknown)}")
    return sources


def _choose_gaps(
    site: Site,
    top: _Topology,
    sources: Mapping[str, DataKind],
    exchange: Exchange | None,
    lo: int,
    hi: int,
    tz: str,
) -> list[Gap]:
    """A 4-hour gap at the common areas' meter (from 09:00 on the day at 30 % of the period)
    and a whole local day at the heating meter (the day at 70 %), both in register data."""
    zi = zone(tz)
    plain = [k for k, v in sources.items() if v == "registers"]
    if exchange is not None:
        plain = [k for k in plain if k != exchange.location] + [
            k for k in plain if k == exchange.location
        ]
    if not plain:
        return []

    def pick(kind: str, avoid: str | None) -> str:
        for k in plain:
            if top.kinds.get(k) == kind and k != avoid:
                return k
        return next((k for k in plain if k != avoid), plain[0])

    def day_at(fraction: float) -> date:
        return datetime.fromtimestamp(lo + int((hi - lo) * fraction), zi).date()

    gaps: list[Gap] = []
    short_loc = pick("general", None)
    begin = to_epoch(datetime.combine(day_at(0.3), time(9, 0), tzinfo=zi))
    end = begin + 4 * 3600
    long_loc = pick("heating", short_loc)
    day = day_at(0.7)
    day_begin = to_epoch(datetime.combine(day, time(0, 0), tzinfo=zi))
    day_end = to_epoch(datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zi))
    for loc_id, b, e in ((short_loc, begin, end), (long_loc, day_begin, day_end)):
        b, e = max(b, lo), min(e, hi)
        if e - b < 2 * SLOT_SECONDS:
            continue
        meter = _meter_at(site.location(loc_id), (b + e) // 2, tz)
        if meter is None:
            continue
        gaps.append(Gap(loc_id, meter.key, b, e, b // SLOT_SECONDS, -(-e // SLOT_SECONDS)))
    return gaps


def _meter_at(loc: Location, epoch: int, tz: str) -> Meter | None:
    for meter in loc.meters:
        begin, end = _meter_window(meter, tz)
        if begin <= epoch and (end is None or epoch <= end):
            return meter
    return None


def _start_values(
    rng: np.random.Generator, fresh: bool, per_year: tuple[float, float]
) -> tuple[float, float]:
    """Register values at the first reading: 0 for a meter installed in the period, else what
    the meter counted in the 0.3 to 2 years it has already run (at this period's pace)."""
    if fresh:
        return 0.0, 0.0
    years = float(rng.uniform(0.3, 2.0))
    return years * per_year[0], years * per_year[1]


def _write_files(
    site: Site,
    top: _Topology,
    flows: _Flows,
    sources: Mapping[str, DataKind],
    gaps: list[Gap],
    lo: int,
    hi: int,
    out_dir: Path,
    model: DemoModel,
    seed: int,
) -> list[Path]:
    tz = site.site.timezone
    clock = flows.clock
    rng = np.random.default_rng([seed, 3])
    register_frames: list[pl.DataFrame] = []
    phase_frames: list[pl.DataFrame] = []
    interval_frames: list[pl.DataFrame] = []
    order = 0
    for loc in site.locations:
        kind = sources.get(loc.id)
        if kind is None:
            continue
        power = flows.power[loc.id]
        if kind == "intervals":
            point = loc.metering_points.import_ or loc.metering_points.export or loc.id
            n = hi // SLOT_SECONDS - lo // SLOT_SECONDS
            inner = slice(_MARGIN_SLOTS, _MARGIN_SLOTS + n)
            imp = _slot_sum(np.maximum(power, 0.0))[inner]
            exp = _slot_sum(np.maximum(-power, 0.0))[inner]
            if loc.meters and loc.meters[0].inverted:
                imp, exp = exp, imp
            ends = lo + SLOT_SECONDS * np.arange(1, n + 1, dtype=np.int64)
            # only quarter hours measured by a meter installed for all of them
            measured = np.zeros(n, dtype=bool)
            for meter in loc.meters:
                begin, end = _meter_window(meter, tz)
                measured |= (ends - SLOT_SECONDS >= begin) & ((end is None) | (ends <= (end or 0)))
            ends, imp, exp = ends[measured], imp[measured], exp[measured]
            m = len(ends)
            interval_frames.append(
                pl.DataFrame(
                    {
                        "end": _local_text(ends, tz),
                        "metering_point": [point] * m,
                        "import_kwh": _numbers(imp, model.interval_decimals),
                        "export_kwh": _numbers(exp, model.interval_decimals),
                        "quality": ["L1"] * m,
                        "_epoch": ends,
                        "_order": np.full(m, order),
                        "_month": _month_keys(ends - 1, lo, hi, tz),
                    }
                )
            )
            order += 1
            continue
        cumulative = _cumulative(power, clock.t0)
        phases = _phase_power(flows, top, loc.id) if kind == "phases" else None
        for meter in loc.meters:
            begin, end = _meter_window(meter, tz)
            a = max(begin, lo)
            b = hi if end is None else min(end, hi)
            if kind == "irregular-registers":
                a, b = max(begin, lo - SLOT_SECONDS), hi + SLOT_SECONDS
                if end is not None:
                    b = min(end, b)
            if b <= a:
                continue
            constant = float(meter.transformer_constant)
            sign = -1.0 if meter.inverted else 1.0
            if kind == "phases":
                assert phases is not None
                first = -(-a // _MINUTE) * _MINUTE
                times = np.arange(first, b + 1, _MINUTE, dtype=np.int64)
                k = (times - clock.t0) // _MINUTE
                values = phases[:, k] * sign / constant
                m = len(times)
                phase_frames.append(
                    pl.DataFrame(
                        {
                            "time": _local_text(times, tz),
                            "meter": [meter.key] * m,
                            "l1_kw": _numbers(values[0], model.phase_decimals),
                            "l2_kw": _numbers(values[1], model.phase_decimals),
                            "l3_kw": _numbers(values[2], model.phase_decimals),
                            "_epoch": times,
                            "_order": np.full(m, order),
                            "_month": _month_keys(times, lo, hi, tz),
                        }
                    )
                )
                order += 1
                continue
            if kind == "irregular-registers":
                step = model.irregular_seconds
                base = np.arange(a // step * step, b + step, step, dtype=np.int64)
                jitter = rng.integers(7, 54, size=len(base))
                times = base + jitter
                times = times[(times >= a) & (times <= b)]
            else:
                first = -(-a // SLOT_SECONDS) * SLOT_SECONDS
                times = np.arange(first, b + 1, SLOT_SECONDS, dtype=np.int64)
            extra = [t for t in (begin, end) if t is not None and lo <= t <= hi]
            times = np.unique(np.concatenate((times, np.array(extra, dtype=np.int64))))
            times = times[times >= max(begin, clock.t0)]
            if end is not None:
                times = times[times <= end]
            for gap in gaps:
                if gap.meter == meter.key:
                    times = times[(times <= gap.begin) | (times >= gap.end)]
            if not len(times):
                continue
            phys_imp, phys_exp = cumulative.at(times)
            ref_imp, ref_exp = cumulative.at(np.array([max(begin, clock.t0)], dtype=np.int64))
            phys_imp, phys_exp = phys_imp - ref_imp[0], phys_exp - ref_exp[0]
            reg_imp, reg_exp = (phys_exp, phys_imp) if meter.inverted else (phys_imp, phys_exp)
            span_years = (hi - lo) / (365.25 * 86_400)
            total_imp, total_exp = cumulative.at(np.array([hi], dtype=np.int64))
            per_year = (float(total_imp[0]) / span_years, float(total_exp[0]) / span_years)
            if meter.inverted:
                per_year = (per_year[1], per_year[0])
            start_imp, start_exp = _start_values(
                rng, begin >= lo, (per_year[0] / constant, per_year[1] / constant)
            )
            decimals = (
                model.secondary_register_decimals if constant != 1.0 else model.register_decimals
            )
            m = len(times)
            text = _local_text(times, tz)
            month = _month_keys(times, lo, hi, tz)
            for obis, values, start_value in (
                ("1-0:1.8.0", reg_imp, start_imp),
                ("1-0:2.8.0", reg_exp, start_exp),
            ):
                register_frames.append(
                    pl.DataFrame(
                        {
                            "time": text,
                            "meter": [meter.key] * m,
                            "obis": [obis] * m,
                            "value": _numbers(start_value + values / constant, decimals),
                            "unit": ["kWh"] * m,
                            "_epoch": times,
                            "_order": np.full(m, order),
                            "_month": month,
                        }
                    )
                )
                order += 1
    files = _write_monthly(
        register_frames, "registers", ["time", "meter", "obis", "value", "unit"], out_dir
    )
    files += _write_monthly(
        phase_frames, "phases", ["time", "meter", "l1_kw", "l2_kw", "l3_kw"], out_dir
    )
    files += _write_monthly(
        interval_frames,
        "intervals",
        ["end", "metering_point", "import_kwh", "export_kwh", "quality"],
        out_dir,
    )
    return files


# --------------------------------------------------------------------------------------------
# monitoring view of the truth


def monitoring_data(data: GeneratedData) -> MonitoringData:
    """The physical truth as the input of the monitoring charts (SM-4)."""
    from lastgang.report.charts import MonitoringData

    site = data.site
    n = data.stop - data.start
    production: dict[str, FloatArray] = {}
    names = {loc.id: loc.name or loc.id for loc in site.locations}
    if "unit:output" in data.flows:
        production["Emergency power unit (battery and PV)"] = data.flows["unit:output"]
    for key, values in data.flows.items():
        if key.startswith("pv:") and key != "pv:unit":
            production[names.get(key[3:], key[3:])] = values
    consumption: dict[str, FloatArray] = {}
    for unit in site.units:
        total = np.zeros(n)
        for meter_id in unit.meters:
            total = total + data.flows.get(f"consumption:{meter_id}", np.zeros(n))
        consumption[unit.name or unit.id] = total
    top = _topology(site)
    grid = top.grid
    grid_import = data.import_kwh[grid] if grid else np.zeros(n)
    grid_export = data.export_kwh[grid] if grid else np.zeros(n)
    produced = sum(production.values(), np.zeros(n))
    used = sum(consumption.values(), np.zeros(n))
    self_consumed = np.clip(produced - grid_export, 0.0, used)
    own_draw = data.flows.get("unit:draw", np.zeros(n))
    return MonitoringData(
        start=data.start,
        stop=data.stop,
        tz=data.tz,
        production=production,
        consumption=consumption,
        grid_import=grid_import,
        grid_export=grid_export,
        self_consumed=self_consumed,
        unit_own_draw=own_draw,
    )
