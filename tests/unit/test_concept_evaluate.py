"""evaluate_concept: inverted meters (SM-2) and virtual meters (SM-3) over load profiles."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lastgang.concept.evaluate import evaluate_concept, inverted_slots, physical_profile
from lastgang.concept.model import Location, Role, Site
from lastgang.errors import ConceptError
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.timegrid import to_epoch

NAN = float("nan")
# 2025-06-02 00:00 UTC as a slot number
START = to_epoch(datetime(2025, 6, 2, tzinfo=UTC)) // 900
L1, L2, MISSING = int(Quality.L1), int(Quality.L2), int(Quality.MISSING)


def _meter(serial: str, **extra: Any) -> dict[str, Any]:
    return {"manufacturer": "SMART-ME", "serial": serial, "installed": date(2024, 3, 1), **extra}


def emergency_site() -> Site:
    """SM-3: HAK -> excl. solar (inverted) -> unit -> incl. solar (inverted) -> building."""
    return Site.model_validate(
        {
            "site": {"id": "sm3"},
            "locations": [
                {"id": "hak", "role": "grid", "meters": [_meter("H")]},
                {
                    "id": "excl-solar",
                    "role": "technical",
                    "upstream": "hak",
                    "meters": [_meter("E", orientation="inverted")],
                },
                {
                    "id": "incl-solar",
                    "role": "technical",
                    "upstream": "excl-solar",
                    "meters": [_meter("I", orientation="inverted")],
                },
                {
                    "id": "apt-1",
                    "role": "consumer",
                    "upstream": "incl-solar",
                    "meters": [_meter("A")],
                },
            ],
            "virtual_meters": [
                {
                    "id": "production",
                    "formula": "incl-solar - excl-solar",
                    "parent": "hak",
                    "role": "production",
                }
            ],
            "units": [{"id": "top-1", "meters": ["apt-1"]}],
        }
    )


def profile(imp: list[float], exp: list[float], quality: list[int] | None = None) -> LoadProfile:
    q = quality if quality is not None else [L1] * len(imp)
    return LoadProfile(START, np.array(imp), np.array(exp), np.array(q, dtype=np.int8))


def test_sm_3_emergency_power_production_by_hand() -> None:
    """Six quarter hours, kWh, whole building behind the emergency power unit.

    G = energy the unit takes from the grid through "excl. solar" (negative: it sends energy
    up to the grid), L = energy it delivers to the building through "incl. solar". Both meters
    are inverted, so each registers the downstream flow as export and the upstream flow as
    import; lastgang swaps them back (SM-2). Production = incl - excl = L - G (SM-3), booked as
    export of the production meter, and as import when negative.

    slot 0, sun:      G = 0.5, L = 2.5.  excl raw (0, 0.5) -> (0.5, 0); incl raw (0, 2.5)
                      -> (2.5, 0). Production = 2.5 - 0.5 = 2.0 -> export 2.0.
    slot 1, standby:  night, building 1.2, the unit itself draws 0.05: G = 1.25, L = 1.2.
                      Production = 1.2 - 1.25 = -0.05 -> import 0.05, export 0 (the unit's own
                      draw, below the 0 line of the monitoring chart, SM-4).
    slot 2, surplus:  building 0.6, production 1.5: 0.9 flows up to the grid, G = -0.9.
                      excl raw (0.9, 0) -> (0, 0.9), net -0.9; incl raw (0, 0.6) -> (0.6, 0).
                      Production = 0.6 - (-0.9) = 1.5 -> export 1.5.
    slot 3, both ways in one quarter hour (TOR-5.0b): 0.3 from the grid, later 0.1 back up.
                      excl raw (0.1, 0.3) -> (0.3, 0.1), net 0.2; incl raw (0, 0.9) -> 0.9.
                      Production = 0.9 - 0.2 = 0.7 -> export 0.7.
    slot 4, quality:  excl raw (0, 0.4) L1, incl raw (0, 0.4) L2 (substitute).
                      Production = 0.4 - 0.4 = 0 with quality L2 (the worse input).
    slot 5, missing:  excl has no value -> Production missing.
    """
    site = emergency_site()
    profiles = {
        "excl-solar": profile(
            [0.0, 0.0, 0.9, 0.1, 0.0, NAN],
            [0.5, 1.25, 0.0, 0.3, 0.4, NAN],
            [L1, L1, L1, L1, L1, MISSING],
        ),
        "incl-solar": profile(
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [2.5, 1.2, 0.6, 0.9, 0.4, 0.8],
            [L1, L1, L1, L1, L2, L1],
        ),
    }
    result = evaluate_concept(site, profiles, START, START + 6)

    excl, incl, prod = (result.index(i) for i in ("excl-solar", "incl-solar", "production"))
    np.testing.assert_allclose(result.import_kwh[excl, :5], [0.5, 1.25, 0.0, 0.3, 0.4])
    np.testing.assert_allclose(result.export_kwh[excl, :5], [0.0, 0.0, 0.9, 0.1, 0.0])
    np.testing.assert_allclose(result.import_kwh[incl], [2.5, 1.2, 0.6, 0.9, 0.4, 0.8])

    np.testing.assert_allclose(result.export_kwh[prod, :5], [2.0, 0.0, 1.5, 0.7, 0.0], atol=1e-12)
    np.testing.assert_allclose(result.import_kwh[prod, :5], [0.0, 0.05, 0.0, 0.0, 0.0], atol=1e-12)
    assert np.isnan(result.import_kwh[prod, 5]) and np.isnan(result.export_kwh[prod, 5])
    assert result.quality[prod].tolist() == [L1, L1, L1, L1, L2, MISSING]

    # the standby slot: production (export - import) is negative
    signed = result.export_kwh[prod] - result.import_kwh[prod]
    assert signed[1] == pytest.approx(-0.05)


def test_result_shape_and_labels() -> None:
    site = emergency_site()
    result = evaluate_concept(site, {}, START, START + 4)
    assert result.ids == ("hak", "excl-solar", "incl-solar", "apt-1", "production")
    assert result.import_kwh.shape == result.export_kwh.shape == result.quality.shape == (5, 4)
    assert result.virtual == (False, False, False, False, True)
    assert result.role("production") is Role.PRODUCTION
    assert result.with_role(Role.TECHNICAL) == ("excl-solar", "incl-solar")
    assert result.units == {"top-1": ("apt-1",)}
    # no profiles at all: everything missing
    assert (result.quality == MISSING).all()
    assert np.isnan(result.import_kwh).all()


def test_virtual_meter_positive_direction_by_role_and_override() -> None:
    """A consumer virtual meter books a positive value as import; ``positive`` overrides."""
    data = emergency_site().model_dump(by_alias=True)
    data["virtual_meters"] = [
        {"id": "v1", "formula": "2 * hak - apt-1.import", "parent": "hak", "role": "consumer"},
        {"id": "v2", "formula": "hak", "parent": "hak", "role": "consumer", "positive": "export"},
    ]
    site = Site.model_validate(data)
    profiles = {"hak": profile([1.0, 0.0], [0.0, 0.5]), "apt-1": profile([0.4, 0.2], [9.0, 9.0])}
    result = evaluate_concept(site, profiles, START, START + 2)
    v1, v2 = result.index("v1"), result.index("v2")
    # v1 = 2 * (1.0 - 0) - 0.4 = 1.6 ; 2 * (0 - 0.5) - 0.2 = -1.2
    np.testing.assert_allclose(result.import_kwh[v1], [1.6, 0.0])
    np.testing.assert_allclose(result.export_kwh[v1], [0.0, 1.2])
    # v2 = hak net (1.0, -0.5), positive booked as export
    np.testing.assert_allclose(result.export_kwh[v2], [1.0, 0.0])
    np.testing.assert_allclose(result.import_kwh[v2], [0.0, 0.5])


def test_virtual_meter_of_virtual_meters_in_any_order() -> None:
    data = emergency_site().model_dump(by_alias=True)
    data["virtual_meters"] = [
        {"id": "outer", "formula": "inner + 1 * hak", "parent": "hak", "role": "consumer"},
        {"id": "inner", "formula": "0.5 * hak", "parent": "hak", "role": "consumer"},
    ]
    result = evaluate_concept(
        Site.model_validate(data), {"hak": profile([2.0], [0.0])}, START, START + 1
    )
    assert result.import_kwh[result.index("inner")].tolist() == [1.0]
    assert result.import_kwh[result.index("outer")].tolist() == [3.0]


def test_virtual_meter_cycle_is_refused() -> None:
    data = emergency_site().model_dump(by_alias=True)
    data["virtual_meters"] = [
        {"id": "a", "formula": "b", "parent": "hak", "role": "consumer"},
        {"id": "b", "formula": "a", "parent": "hak", "role": "consumer"},
    ]
    with pytest.raises(ConceptError):
        evaluate_concept(Site.model_validate(data), {}, START, START + 1)


def test_unknown_operand_is_refused() -> None:
    data = emergency_site().model_dump(by_alias=True)
    data["virtual_meters"][0]["formula"] = "incl-solar - nothing"
    with pytest.raises(ConceptError) as info:
        evaluate_concept(Site.model_validate(data), {}, START, START + 1)
    assert info.value.problems[0].column == "virtual_meters[0].formula"


def test_sm_2_orientation_follows_the_meter_of_each_slot() -> None:
    """An inverted meter is exchanged for a normal one after two slots (TOR-7.2.1): only the
    slots the inverted meter produced are swapped. Slot 4 names no meter, so the meter installed
    at that time (the normal one) decides; slot 5 names a meter unknown to the site: also by
    time."""
    exchange = datetime.fromtimestamp((START + 2) * 900, tz=UTC)
    loc = Location.model_validate(
        {
            "id": "pv",
            "role": "production",
            "meters": [
                _meter("OLD", orientation="inverted", removed=exchange),
                _meter("NEW", installed=exchange),
            ],
        }
    )
    stored = LoadProfile(
        START,
        np.array([1.0, 2.0, 0.0, 0.0, 0.0, 0.0]),
        np.array([0.0, 0.0, 3.0, 4.0, 5.0, 6.0]),
        np.full(6, L1, dtype=np.int8),
        meter=np.array([0, 0, 1, 1, -1, 2], dtype=np.int32),
        meters=("SMART-ME:OLD", "SMART-ME:NEW", "OTHER:X"),
    )
    assert inverted_slots(loc, stored, "Europe/Vienna").tolist() == [
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    physical = physical_profile(loc, stored, "Europe/Vienna")
    assert physical.import_kwh.tolist() == [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert physical.export_kwh.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert physical.meter is stored.meter  # provenance kept (TOR-4.1m)


def test_sm_2_slots_without_meter_use_the_installation_dates() -> None:
    exchange = datetime.fromtimestamp((START + 1) * 900, tz=UTC)
    loc = Location.model_validate(
        {
            "id": "pv",
            "role": "production",
            "meters": [
                _meter("NEW", installed=exchange, orientation="inverted"),
                _meter("OLD", removed=exchange),
            ],
        }
    )
    stored = profile([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    assert inverted_slots(loc, stored, "Europe/Vienna").tolist() == [False, True, True]


def test_whole_profile_from_an_inverted_meter_is_swapped() -> None:
    loc = Location.model_validate(
        {"id": "pv", "role": "production", "meters": [_meter("P", orientation="inverted")]}
    )
    stored = profile([1.5, 0.0], [0.0, 0.25])
    physical = physical_profile(loc, stored, "Europe/Vienna")
    assert physical.import_kwh.tolist() == [0.0, 0.25]
    assert physical.export_kwh.tolist() == [1.5, 0.0]


_values = hnp.arrays(np.float64, 8, elements=st.floats(0, 1e6, allow_nan=False))


@given(_values, _values, hnp.arrays(np.int32, 8, elements=st.integers(-1, 2)))
def test_sm_2_inverted_meter_swapped_twice_is_the_original(
    imp: np.ndarray[Any, Any], exp: np.ndarray[Any, Any], meter: np.ndarray[Any, Any]
) -> None:
    stored = LoadProfile(
        START,
        imp,
        exp,
        np.full(8, L1, dtype=np.int8),
        meter=meter,
        meters=("SMART-ME:A", "SMART-ME:B", "SMART-ME:C"),
    )
    twice = stored.swapped().swapped()
    assert np.array_equal(twice.import_kwh, imp) and np.array_equal(twice.export_kwh, exp)

    loc = Location.model_validate(
        {
            "id": "x",
            "role": "consumer",
            "meters": [
                _meter("A", orientation="inverted", removed=date(2024, 6, 1)),
                _meter("B", installed=date(2024, 6, 1), removed=date(2024, 7, 1)),
                _meter("C", installed=date(2024, 7, 1), orientation="inverted"),
            ],
        }
    )
    back = physical_profile(loc, physical_profile(loc, stored, "UTC"), "UTC")
    assert np.array_equal(back.import_kwh, imp) and np.array_equal(back.export_kwh, exp)
    # the energy of each slot is kept, only its direction may change
    once = physical_profile(loc, stored, "UTC")
    assert np.array_equal(once.import_kwh + once.export_kwh, imp + exp)


def _plain_site() -> Site:
    return Site.model_validate(
        {
            "site": {"id": "plain"},
            "locations": [
                {"id": "hak", "role": "grid", "meters": [_meter("H")]},
                {"id": "apt-1", "role": "consumer", "upstream": "hak", "meters": [_meter("A")]},
                {"id": "apt-2", "role": "consumer", "upstream": "hak", "meters": [_meter("B")]},
            ],
            "units": [{"id": "top-1", "meters": ["apt-1"]}, {"id": "top-2", "meters": ["apt-2"]}],
        }
    )


def test_profiles_read_as_rows_of_one_array_are_the_concept_itself() -> None:
    """The store reads every location's profile as a row of one [locations, slots] array per
    column; without an inverted meter or a virtual meter the concept is those rows (no copy),
    read only, and equal to the concept of separate copies."""
    site = _plain_site()
    rng = np.random.default_rng(3)
    imp, exp = rng.random((3, 8)), rng.random((3, 8))
    imp[1, 2] = NAN
    quality = np.full((3, 8), L1, dtype=np.int8)
    quality[1, 2] = MISSING
    ids = [loc.id for loc in site.locations]
    rows = {k: LoadProfile(START, imp[m], exp[m], quality[m]) for m, k in enumerate(ids)}
    copies = {
        k: LoadProfile(START, imp[m].copy(), exp[m].copy(), quality[m].copy())
        for m, k in enumerate(ids)
    }
    shared = evaluate_concept(site, rows, START, START + 8)
    copied = evaluate_concept(site, copies, START, START + 8)
    assert np.shares_memory(shared.import_kwh, imp) and np.shares_memory(shared.quality, quality)
    assert not np.shares_memory(copied.import_kwh, imp)
    assert not shared.import_kwh.flags.writeable and not shared.export_kwh.flags.writeable
    for a, b in (
        (shared.import_kwh, copied.import_kwh),
        (shared.export_kwh, copied.export_kwh),
        (shared.quality, copied.quality),
    ):
        np.testing.assert_array_equal(a, b)
    # rows in another order than the site file's, or a shorter profile: copied as always
    swapped = {**rows, "hak": rows["apt-1"], "apt-1": rows["hak"]}
    assert evaluate_concept(site, swapped, START, START + 8).import_kwh.flags.writeable
    assert not np.shares_memory(evaluate_concept(site, rows, START, START + 7).import_kwh, imp)
