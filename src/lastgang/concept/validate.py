"""Checks of a whole measurement concept (``lastgang check``).

:func:`check_site` looks across the whole site configuration and lists every problem at once,
each with its place in the file as a TOML path (``locations[3].meters[0].ct``) and a severity:
an *error* makes the concept unusable for billing, a *warning* is something to look at.

What is checked:

- references: ``upstream``, virtual meter formula operands and ``parent``, billing unit meters,
  tariff meters, billing settings, contract and fee units; cycles in the wiring and among virtual
  meters (a virtual meter may use other virtual meters, never itself);
- duplicate ids (locations and virtual meters share one name space) and metering point IDs used
  twice (TOR-4.1: an ID is never reused), IDs that break TOR-4.1, one ID for both directions
  (TOR-4.0);
- meters: OBIS registers (TOR-4.3), accuracy classes of meters and transformers for their
  connection and transformers where the connection needs them (TOR-5.1/A3),
  installations overlapping at one location or one meter at two places at once (TOR-7.2.1),
  calibration expired or expiring within six months (TOR-6.1);
- grid billing meters connected in series (TOR-5.4);
- billing: units without a meter, a meter billed to two units, tariffs on meters that produce
  nothing, production nobody consumes, production counted twice, tariff holes and overlaps
  (:func:`lastgang.pricing.tariff_problems`, when billing is installed).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lastgang.concept.formula import FormulaError, Node, parse_formula, references
from lastgang.concept.model import (
    Location,
    Meter,
    Role,
    Site,
    Transformer,
    VirtualMeter,
)
from lastgang.errors import InvalidObis, Problem
from lastgang.ids import check_metering_point_id
from lastgang.obis import Quantity, parse_obis

__all__ = ["CALIBRATION_WARNING_MONTHS", "check_site", "errors_of", "warnings_of"]

#: a calibration that ends within this many months of ``today`` gives a warning (TOR-6.1)
CALIBRATION_WARNING_MONTHS = 6

_PRODUCING = (Role.PRODUCTION, Role.STORAGE)
_LOCAL_TARIFF_KINDS = ("local", "solar", "battery")

Period = tuple[date, date]
_TICK = timedelta(microseconds=1)


def check_site(
    site: Site, *, today: date | None = None, periods: Iterable[Period] = ()
) -> list[Problem]:
    """Every problem of a site configuration, errors and warnings, each with its place.

    ``today`` (default: today in the site's time zone) dates the calibration checks: a meter in
    use whose calibration has ended is an error, one that ends within
    :data:`CALIBRATION_WARNING_MONTHS` months a warning. ``periods`` are billing periods
    ``(first_day, last_day)`` (local days, inclusive) that are to be billed: a meter in use on a
    day of such a period after its calibration ended is an error, even when ``today`` is earlier.
    """
    checker = _Checker(site, today, tuple(periods))
    return checker.run()


def errors_of(problems: Iterable[Problem]) -> list[Problem]:
    """The problems of severity error."""
    return [p for p in problems if p.severity == "error"]


def warnings_of(problems: Iterable[Problem]) -> list[Problem]:
    """The problems of severity warning."""
    return [p for p in problems if p.severity == "warning"]


def _kind(value: object) -> str:
    """A tariff kind as plain text (enum value or string), lower case."""
    raw = getattr(value, "value", value)
    return str(raw).strip().lower()


def _add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def _energy_quantities(meter: Meter) -> set[tuple[str, str]]:
    """(active|reactive, import|export) that a meter's registers measure (TOR-4.3)."""
    out: set[tuple[str, str]] = set()
    for text in meter.registers:
        try:
            q = parse_obis(text).quantity
        except InvalidObis:
            continue
        if q is Quantity.ACTIVE_IMPORT:
            out.add(("active", "import"))
        elif q is Quantity.ACTIVE_EXPORT:
            out.add(("active", "export"))
        elif q in (Quantity.ACTIVE_ABSOLUTE, Quantity.ACTIVE_SIGNED):
            out |= {("active", "import"), ("active", "export")}
        elif q in (Quantity.REACTIVE_IMPORT, Quantity.REACTIVE_Q1, Quantity.REACTIVE_Q2):
            out.add(("reactive", "import"))
        elif q in (Quantity.REACTIVE_EXPORT, Quantity.REACTIVE_Q3, Quantity.REACTIVE_Q4):
            out.add(("reactive", "export"))
    return out


def _location_quantities(loc: Location) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for meter in loc.meters:
        out |= _energy_quantities(meter)
    return out or {("active", "import"), ("active", "export")}


def _describe(quantities: set[tuple[str, str]]) -> str:
    return ", ".join(f"{kind} {direction}" for kind, direction in sorted(quantities))


def _optional_module(name: str) -> ModuleType | None:
    """A module another part of lastgang provides, or None while it is not installed."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            return None
        raise


class _Checker:
    def __init__(self, site: Site, today: date | None, periods: Sequence[Period]) -> None:
        self.site = site
        self.problems: list[Problem] = []
        self.periods = periods
        try:
            self.tz = ZoneInfo(site.site.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.error(
                f"unknown time zone {site.site.timezone!r}: use an IANA name such as "
                "'Europe/Vienna' (TOR-4.2: legal time of the site)",
                "site.timezone",
            )
            self.tz = ZoneInfo("Europe/Vienna")
        self.today = today if today is not None else datetime.now(self.tz).date()
        self.loc_index = {loc.id: i for i, loc in reversed(list(enumerate(site.locations)))}
        self.vm_index = {vm.id: i for i, vm in reversed(list(enumerate(site.virtual_meters)))}
        self.unit_index = {u.id: i for i, u in reversed(list(enumerate(site.units)))}
        self.formulas: dict[str, Node] = {}
        pricing = _optional_module("lastgang.pricing")
        # billing checks of lastgang.pricing: billing_problems covers tariffs, contracts, fees
        # and [billing]; tariff_problems the tariffs alone. What they cover is not repeated here.
        self.billing_check: Callable[[Site], Iterable[Problem]] | None = getattr(
            pricing, "billing_problems", None
        )
        self.covers_billing = self.billing_check is not None
        if self.billing_check is None:
            self.billing_check = getattr(pricing, "tariff_problems", None)
        self.covers_tariffs = self.billing_check is not None

    # --- collecting -----------------------------------------------------------------------

    def error(self, reason: str, column: str, meter: str | None = None) -> None:
        self.problems.append(Problem(reason, column=column, meter=meter))

    def warning(self, reason: str, column: str, meter: str | None = None) -> None:
        self.problems.append(Problem(reason, column=column, meter=meter, severity="warning"))

    def run(self) -> list[Problem]:
        steps: list[Callable[[], None]] = [
            self.check_site_info,
            self.check_duplicate_ids,
            self.check_locations,
            self.check_wiring,
            self.check_metering_point_ids,
            self.check_meters,
            self.check_series,
            self.check_virtual_meters,
            self.check_units,
            self.check_billing_references,
            self.check_production,
            self.check_pricing,
        ]
        for step in steps:
            step()
        return self.problems

    def known(self, meter_id: str) -> bool:
        return meter_id in self.loc_index or meter_id in self.vm_index

    def role(self, meter_id: str) -> Role:
        if meter_id in self.loc_index:
            return self.site.locations[self.loc_index[meter_id]].role
        return self.site.virtual_meters[self.vm_index[meter_id]].role

    def unknown_meter(self, meter_id: str) -> str:
        hint = "; the ids are: " + ", ".join(sorted({*self.loc_index, *self.vm_index}))
        split = self.split_ids(meter_id)
        if split is not None:
            hint = (
                f"; to subtract, put spaces around '-' ('{' - '.join(split)}'): a hyphen "
                "between letters belongs to the id"
            )
        return f"unknown meter {meter_id!r}: no location or virtual meter has this id{hint}"

    def split_ids(self, text: str) -> list[str] | None:
        """``text`` cut at hyphens into two or more known ids (``a-b-c`` -> ``a-b``, ``c``)."""
        parts = text.split("-")
        best: dict[int, list[str]] = {0: []}  # number of parts consumed -> ids so far
        for start in range(len(parts)):
            if start not in best:
                continue
            for stop in range(start + 1, len(parts) + 1):
                candidate = "-".join(parts[start:stop])
                if self.known(candidate) and stop not in best:
                    best[stop] = [*best[start], candidate]
        found = best.get(len(parts))
        return found if found is not None and len(found) > 1 else None

    # --- site ---------------------------------------------------------------------------------

    def check_site_info(self) -> None:
        currency = self.site.site.currency
        if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
            self.error(
                f"currency {currency!r} is not an ISO 4217 code such as 'EUR' or 'CHF'",
                "site.currency",
            )

    def check_duplicate_ids(self) -> None:
        seen: dict[str, str] = {}
        items: list[tuple[str, str]] = [
            *((loc.id, f"locations[{i}].id") for i, loc in enumerate(self.site.locations)),
            *((vm.id, f"virtual_meters[{i}].id") for i, vm in enumerate(self.site.virtual_meters)),
        ]
        for meter_id, place in items:
            if meter_id in seen:
                self.error(
                    f"id {meter_id!r} is used twice (first at {seen[meter_id]}): locations and "
                    "virtual meters need distinct ids",
                    place,
                    meter_id,
                )
            else:
                seen[meter_id] = place
        groups: list[tuple[str, Iterable[Any]]] = [("units", self.site.units)]
        if not self.covers_tariffs:
            groups.append(("tariffs", self.site.tariffs))
        if not self.covers_billing:
            groups += [("fees", getattr(self.site, "fees", [])), ("contracts", self.site.contracts)]
        for table, rows in groups:
            first: dict[str, int] = {}
            for i, row in enumerate(rows):
                row_id = getattr(row, "id", None)
                if row_id is None:
                    continue
                if row_id in first:
                    self.error(
                        f"{table} id {row_id!r} is used twice (first at {table}[{first[row_id]}])",
                        f"{table}[{i}].id",
                    )
                else:
                    first[row_id] = i

    # --- locations and wiring -----------------------------------------------------------------

    def check_locations(self) -> None:
        for i, loc in enumerate(self.site.locations):
            if not loc.meters:
                self.warning(
                    f"location {loc.id!r} has no meter: add a [[locations.meters]] entry with "
                    "manufacturer, serial and installed, so readings can be linked to it "
                    "(TOR-4.1m)",
                    f"locations[{i}].meters",
                    loc.id,
                )

    def check_wiring(self) -> None:
        for i, loc in enumerate(self.site.locations):
            up = loc.upstream
            if up is None:
                continue
            place = f"locations[{i}].upstream"
            if up == loc.id:
                self.error(f"location {loc.id!r} is its own upstream", place, loc.id)
            elif up in self.vm_index:
                self.error(
                    f"upstream {up!r} of {loc.id!r} is a virtual meter: wiring connects real "
                    "metering locations only",
                    place,
                    loc.id,
                )
            elif up not in self.loc_index:
                self.error(
                    f"unknown upstream {up!r} of {loc.id!r}: no location has this id",
                    place,
                    loc.id,
                )
        # cycles in the wiring: follow upstream from every location
        reported: set[frozenset[str]] = set()
        for i, loc in enumerate(self.site.locations):
            path = [loc.id]
            current = loc
            while current.upstream is not None and current.upstream in self.loc_index:
                nxt = current.upstream
                if nxt in path:
                    cycle = path[path.index(nxt) :]
                    key = frozenset(cycle)
                    if len(cycle) > 1 and key not in reported and loc.id == cycle[0]:
                        reported.add(key)
                        self.error(
                            "the wiring is a loop: "
                            + " -> ".join([*cycle, nxt])
                            + " (each location has exactly one upstream, towards the grid)",
                            f"locations[{i}].upstream",
                            loc.id,
                        )
                    break
                path.append(nxt)
                current = self.site.locations[self.loc_index[nxt]]

    def upstream_chain(self, loc: Location) -> list[Location]:
        """The locations upstream of ``loc``, nearest first (stops at a loop)."""
        chain: list[Location] = []
        seen = {loc.id}
        current = loc
        while current.upstream is not None and current.upstream in self.loc_index:
            if current.upstream in seen:
                break
            current = self.site.locations[self.loc_index[current.upstream]]
            seen.add(current.id)
            chain.append(current)
        return chain

    def check_metering_point_ids(self) -> None:
        first: dict[str, str] = {}
        for i, loc in enumerate(self.site.locations):
            points = loc.metering_points
            for direction, value in (("import", points.import_), ("export", points.export)):
                if value is None:
                    continue
                place = f"locations[{i}].metering_points.{direction}"
                for p in check_metering_point_id(value, column=place, meter=loc.id):
                    self.problems.append(p)
                key = value.strip().replace(".", "")
                if key in first:
                    self.error(
                        f"metering point ID {value} is used twice (also at {first[key]}): one ID "
                        "per direction of one location, never reused (TOR-4.0, TOR-4.1)",
                        place,
                        loc.id,
                    )
                else:
                    first[key] = place

    # --- meters ---------------------------------------------------------------------------------

    def check_meters(self) -> None:
        accuracy = _optional_module("lastgang.concept.accuracy")
        first_use: dict[str, list[tuple[str, datetime, datetime | None]]] = {}
        for i, loc in enumerate(self.site.locations):
            spans: list[tuple[int, datetime, datetime | None]] = []
            for j, meter in enumerate(loc.meters):
                place = f"locations[{i}].meters[{j}]"
                self.check_registers(meter, place, loc.id)
                if accuracy is not None:
                    self.check_accuracy(accuracy, meter, place, loc.id)
                start = meter.installed_at(self.tz)
                end = meter.removed_at(self.tz)
                if end is not None and end <= start:
                    self.error(
                        f"meter {meter.key} is removed ({end.isoformat()}) before it is installed "
                        f"({start.isoformat()})",
                        f"{place}.removed",
                        loc.id,
                    )
                    end = start
                spans.append((j, start, end))
                self.check_calibration(meter, place, loc.id, start.astimezone(self.tz).date(), end)
                for other_place, o_start, o_end in first_use.get(meter.key, []):
                    if _overlap(start, end, o_start, o_end):
                        self.error(
                            f"meter {meter.key} is installed at two places at once (also "
                            f"{other_place}): a meter is at one location at a time",
                            f"{place}.serial",
                            loc.id,
                        )
                first_use.setdefault(meter.key, []).append((place, start, end))
            spans.sort(key=lambda s: s[1])
            latest: tuple[int, datetime, datetime | None] | None = None  # latest end so far
            for j1, s1, e1 in spans:
                if latest is not None and _overlap(latest[1], latest[2], s1, e1):
                    j0, _, e0 = latest
                    m0, m1 = loc.meters[j0], loc.meters[j1]
                    until = "in use" if e0 is None else f"removed {e0.isoformat()}"
                    self.error(
                        f"meters {m0.key} ({until}) and {m1.key} (installed {s1.isoformat()}) "
                        f"overlap at location {loc.id!r}: a location has one meter at a time; "
                        f"set 'removed' of {m0.key} to the exchange time (TOR-7.2.1)",
                        f"locations[{i}].meters[{j1}].installed",
                        loc.id,
                    )
                if latest is None or (latest[2] is not None and (e1 is None or e1 > latest[2])):
                    latest = (j1, s1, e1)

    def check_registers(self, meter: Meter, place: str, loc_id: str) -> None:
        for k, text in enumerate(meter.registers):
            try:
                code = parse_obis(text)
            except InvalidObis as exc:
                reasons = "; ".join(p.reason for p in exc.problems) or exc.message
                self.error(reasons, f"{place}.registers[{k}]", loc_id)
                continue
            if not code.is_electricity:
                self.error(
                    f"register {text!r} is not an electricity OBIS code (A must be 1, TOR-4.3)",
                    f"{place}.registers[{k}]",
                    loc_id,
                )

    def check_accuracy(self, module: ModuleType, meter: Meter, place: str, loc_id: str) -> None:
        messages: list[str] = list(module.accuracy_problems(meter))
        for message in messages:
            text = message.lower()
            if "voltage transformer" in text or "vt" in text.split():
                column = f"{place}.vt"
            elif "current transformer" in text or "ct" in text.split():
                column = f"{place}.ct"
            elif "reactive" in text:
                column = f"{place}.reactive_class"
            else:
                column = f"{place}.accuracy_class"
            self.error(message, column, loc_id)

    def check_calibration(
        self, meter: Meter, place: str, loc_id: str, start: date, end: datetime | None
    ) -> None:
        parts: list[tuple[str, str, Meter | Transformer]] = [("meter", place, meter)]
        if meter.ct is not None:
            parts.append(("current transformer", f"{place}.ct", meter.ct))
        if meter.vt is not None:
            parts.append(("voltage transformer", f"{place}.vt", meter.vt))
        # the last local day the meter is in use (removal at 00:00 ends the day before)
        last_day = None if end is None else (end - _TICK).astimezone(self.tz).date()
        for what, at, part in parts:
            if (part.verified is None) != (part.validity_years is None):
                missing = "validity_years" if part.validity_years is None else "verified"
                self.warning(
                    f"calibration of the {what} of {meter.key} is incomplete: give both "
                    f"'verified' (year) and 'validity_years' (missing {missing!r}, TOR-6.1)",
                    f"{at}.{missing}",
                    loc_id,
                )
                continue
            until = part.valid_until
            if until is None or (last_day is not None and last_day <= until):
                continue  # not known, or removed while still calibrated
            subject = "meter" if what == "meter" else f"{what} of meter"
            if until < self.today:
                self.error(
                    f"calibration of {subject} {meter.key} expired on {until.isoformat()} "
                    f"(verified {part.verified}, valid {part.validity_years} years), yet it is "
                    "still in use: exchange it or record its re-verification (TOR-6.1)",
                    f"{at}.verified",
                    loc_id,
                )
                continue
            after = until + timedelta(days=1)
            late = [
                (first, last)
                for first, last in self.periods
                if max(first, start, after) <= min(last, last_day or last)
            ]
            if late:
                first, last = late[0]
                self.error(
                    f"calibration of {subject} {meter.key} ends on {until.isoformat()}, but the "
                    f"billing period {first.isoformat()} to {last.isoformat()} uses it after "
                    "that: values of an expired meter cannot be billed (TOR-6.1)",
                    f"{at}.verified",
                    loc_id,
                )
            elif until < _add_months(self.today, CALIBRATION_WARNING_MONTHS):
                self.warning(
                    f"calibration of {subject} {meter.key} ends on {until.isoformat()}, within "
                    f"{CALIBRATION_WARNING_MONTHS} months: plan its exchange (TOR-6.1)",
                    f"{at}.verified",
                    loc_id,
                )

    def check_series(self) -> None:
        """TOR-5.4: no two grid billing meters in series, unless they measure different
        quantities (active vs reactive energy, or one direction each)."""
        for i, loc in enumerate(self.site.locations):
            if loc.role is not Role.GRID:
                continue
            mine = _location_quantities(loc)
            for above in self.upstream_chain(loc):
                if above.role is not Role.GRID:
                    continue
                theirs = _location_quantities(above)
                shared = mine & theirs
                if shared:
                    self.error(
                        f"grid billing meters {above.id!r} and {loc.id!r} are connected in series "
                        f"and both measure {_describe(shared)}: not allowed in new installations "
                        "(TOR-5.4); make the downstream one a private sub-meter (role "
                        "'consumer' or 'technical') or let each measure other quantities (active "
                        "vs reactive energy, or one direction each)",
                        f"locations[{i}].upstream",
                        loc.id,
                    )

    # --- virtual meters -------------------------------------------------------------------------

    def check_virtual_meters(self) -> None:
        for i, vm in enumerate(self.site.virtual_meters):
            place = f"virtual_meters[{i}]"
            self.check_parent(vm, place)
            try:
                node = parse_formula(vm.formula)
            except FormulaError as exc:
                self.error(
                    f"formula {vm.formula!r} of virtual meter {vm.id!r}: {exc.message}",
                    f"{place}.formula",
                    vm.id,
                )
                continue
            self.formulas[vm.id] = node
            for ref in dict.fromkeys(r.id for r in references(node)):
                if not self.known(ref):
                    self.error(
                        f"formula of virtual meter {vm.id!r}: {self.unknown_meter(ref)}",
                        f"{place}.formula",
                        vm.id,
                    )
            if not references(node):
                self.error(
                    f"formula {vm.formula!r} of virtual meter {vm.id!r} names no meter",
                    f"{place}.formula",
                    vm.id,
                )
        self.check_virtual_cycles()

    def check_parent(self, vm: VirtualMeter, place: str) -> None:
        parent = vm.parent
        if parent in self.vm_index:
            self.error(
                f"parent {parent!r} of virtual meter {vm.id!r} is itself virtual: a virtual "
                "metering point is attached to a real parent metering point (TOR-4.1v)",
                f"{place}.parent",
                vm.id,
            )
        elif parent not in self.loc_index:
            self.error(
                f"unknown parent {parent!r} of virtual meter {vm.id!r}: name the real metering "
                "location it is attached to (TOR-4.1v)",
                f"{place}.parent",
                vm.id,
            )
        else:
            points = self.site.locations[self.loc_index[parent]].metering_points
            if points.import_ is None and points.export is None:
                self.warning(
                    f"parent {parent!r} of virtual meter {vm.id!r} has no metering point ID: the "
                    "virtual metering point is attached to its parent's ID (TOR-4.1v)",
                    f"{place}.parent",
                    vm.id,
                )

    def check_virtual_cycles(self) -> None:
        graph = {
            vm_id: [r.id for r in references(node) if r.id in self.vm_index]
            for vm_id, node in self.formulas.items()
        }
        state: dict[str, int] = {}  # 1 = on the stack, 2 = done
        reported: set[frozenset[str]] = set()

        def visit(node: str, stack: list[str]) -> None:
            state[node] = 1
            stack.append(node)
            for nxt in graph.get(node, []):
                if state.get(nxt) == 1:
                    cycle = stack[stack.index(nxt) :]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        self.error(
                            "virtual meters depend on themselves: "
                            + " -> ".join([*cycle, nxt])
                            + "; a formula may use other virtual meters but never, through them, "
                            "itself",
                            f"virtual_meters[{self.vm_index[nxt]}].formula",
                            nxt,
                        )
                elif state.get(nxt) is None and nxt in graph:
                    visit(nxt, stack)
            stack.pop()
            state[node] = 2

        for vm_id in graph:
            if vm_id not in state:
                visit(vm_id, [])

    # --- billing ---------------------------------------------------------------------------------

    def check_units(self) -> None:
        billed_by: dict[str, str] = {}
        for i, unit in enumerate(self.site.units):
            place = f"units[{i}].meters"
            if not unit.meters:
                self.error(
                    f"billing unit {unit.id!r} has no meter: list the location or virtual meter "
                    "ids whose energy it is billed for",
                    place,
                    unit.id,
                )
            for k, meter_id in enumerate(unit.meters):
                if not self.known(meter_id):
                    self.error(
                        f"billing unit {unit.id!r}: {self.unknown_meter(meter_id)}",
                        f"{place}[{k}]",
                        unit.id,
                    )
                    continue
                if meter_id in billed_by and billed_by[meter_id] != unit.id:
                    self.warning(
                        f"meter {meter_id!r} is billed to two units ({billed_by[meter_id]!r} and "
                        f"{unit.id!r}): its energy would be invoiced twice",
                        f"{place}[{k}]",
                        unit.id,
                    )
                billed_by.setdefault(meter_id, unit.id)

    def check_billing_references(self) -> None:
        for i, tariff in enumerate(self.site.tariffs):
            kind = _kind(getattr(tariff, "kind", ""))
            meter_id = getattr(tariff, "meter", None)
            place = f"tariffs[{i}].meter"
            label = f"{kind} tariff {getattr(tariff, 'id', i)!r}"
            if kind in ("local", "solar", "battery", "feed-in"):
                if meter_id is None:
                    self.error(
                        f"{label} has no production meter: set 'meter' to the production "
                        "location or virtual meter whose energy it prices (SM-3, SM-6)",
                        place,
                    )
                elif not self.known(meter_id):
                    if not self.covers_tariffs:
                        self.error(f"{label}: {self.unknown_meter(meter_id)}", place)
                elif self.role(meter_id) not in _PRODUCING:
                    self.error(
                        f"{label} prices meter {meter_id!r}, which has role "
                        f"{self.role(meter_id).value!r}, not a production meter: a {kind} tariff "
                        "needs a meter of role 'production' or 'storage' (for an emergency power "
                        "unit the virtual Production meter, SM-3)",
                        place,
                        meter_id,
                    )
            elif meter_id is not None and not self.known(meter_id) and not self.covers_tariffs:
                self.error(f"{label}: {self.unknown_meter(meter_id)}", place)

        billing = getattr(self.site, "billing", None)
        if billing is not None:
            balance = getattr(billing, "balance_meter", None)
            if balance is not None:
                if balance not in self.loc_index:
                    if not self.covers_billing:
                        self.error(
                            f"unknown balance meter {balance!r}: name the grid connection "
                            "location (HAK)",
                            "billing.balance_meter",
                        )
                elif self.role(balance) is not Role.GRID:
                    self.error(
                        f"balance meter {balance!r} has role {self.role(balance).value!r}: the "
                        "balance meter is the grid connection (role 'grid', SM-5)",
                        "billing.balance_meter",
                        balance,
                    )
            for k, source in enumerate(getattr(billing, "sources", []) or []):
                if not self.known(source):
                    self.error(
                        f"billing source: {self.unknown_meter(source)}", f"billing.sources[{k}]"
                    )
                elif self.role(source) not in _PRODUCING:
                    self.error(
                        f"billing source {source!r} has role {self.role(source).value!r}, not "
                        "'production' or 'storage'",
                        f"billing.sources[{k}]",
                        source,
                    )
            for unit_id in getattr(billing, "static_shares", {}) or {}:
                if unit_id not in self.unit_index and not self.covers_billing:
                    self.error(
                        f"static share for unknown billing unit {unit_id!r}",
                        f"billing.static_shares.{unit_id}",
                    )
        for i, contract in enumerate(self.site.contracts):
            unit_id = getattr(contract, "unit", None)
            if unit_id is not None and unit_id not in self.unit_index and not self.covers_billing:
                self.error(f"contract for unknown billing unit {unit_id!r}", f"contracts[{i}].unit")
        for i, fee in enumerate(getattr(self.site, "fees", []) or []):
            for k, unit_id in enumerate(getattr(fee, "units", []) or []):
                if unit_id not in self.unit_index and not self.covers_billing:
                    self.error(f"fee for unknown billing unit {unit_id!r}", f"fees[{i}].units[{k}]")

    def producers(self) -> Iterator[tuple[str, str]]:
        """(id, TOML place) of every location and virtual meter that produces or stores."""
        for i, loc in enumerate(self.site.locations):
            if loc.role in _PRODUCING:
                yield loc.id, f"locations[{i}]"
        for i, vm in enumerate(self.site.virtual_meters):
            if vm.role in _PRODUCING:
                yield vm.id, f"virtual_meters[{i}]"

    def check_production(self) -> None:
        producers = list(self.producers())
        if not producers:
            return
        consumers = [
            unit.id
            for unit in self.site.units
            if any(self.known(m) and self.role(m) is Role.CONSUMER for m in unit.meters)
        ]
        priced = {
            getattr(t, "meter", None)
            for t in self.site.tariffs
            if _kind(getattr(t, "kind", "")) in _LOCAL_TARIFF_KINDS
        }
        for meter_id, place in producers:
            if not consumers:
                self.error(
                    f"production meter {meter_id!r} has nobody to consume from it: no billing "
                    "unit has a consumer meter, so its energy cannot be billed (SM-5)",
                    f"{place}.role",
                    meter_id,
                )
            elif self.site.tariffs and meter_id not in priced:
                self.warning(
                    f"production meter {meter_id!r} has no local or battery tariff: its energy "
                    "is not billed to the consumers (add a [[tariffs]] entry with meter = "
                    f"{meter_id!r})",
                    f"{place}.role",
                    meter_id,
                )
        # a production location that is also inside a production virtual meter counts twice
        for i, vm in enumerate(self.site.virtual_meters):
            node = self.formulas.get(vm.id)
            if node is None or vm.role not in _PRODUCING:
                continue
            for ref in dict.fromkeys(r.id for r in references(node)):
                if self.known(ref) and self.role(ref) in _PRODUCING and ref in priced:
                    self.warning(
                        f"production meter {ref!r} is priced by a tariff and is also part of "
                        f"the production virtual meter {vm.id!r}: its energy would be counted "
                        f"twice; give {ref!r} role 'technical' or drop its tariff",
                        f"virtual_meters[{i}].formula",
                        vm.id,
                    )

    def check_pricing(self) -> None:
        if self.billing_check is None:
            return
        for problem in self.billing_check(self.site):
            if isinstance(problem, Problem):
                self.problems.append(problem)
            else:  # a plain message
                self.problems.append(replace(Problem(str(problem)), column="tariffs"))


def _overlap(s0: datetime, e0: datetime | None, s1: datetime, e1: datetime | None) -> bool:
    """Whether two installation spans ``[s, e)`` (open end = still installed) overlap."""
    return (e0 is None or s1 < e0) and (e1 is None or s0 < e1)
