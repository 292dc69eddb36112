"""Allocation of local production to consumers, per quarter hour (SM-5, EC-1).

Every function here works on whole arrays: consumption ``[M, T]`` (one row per billed consumer,
kWh import per slot) and production ``[S, T]`` (one row per production meter, kWh per slot).
Nothing is rounded (TOR-7.2).

The rule, per slot ``t`` (see ``docs/billing.md`` for worked numbers):

1. **Available** production ``A = sum_s P_s``; in balance-meter mode (a HAK is configured)
   ``A = max(0, sum_s P_s - X)`` where ``X`` is the export measured at the grid connection:
   what left the building was not consumed in it.
2. **Local energy** per consumer ``a_i``:

   - ``smart-me`` / ``dynamic`` (SM-5, EC-1 dynamic key): ``share = min(1, A / C)`` with
     ``C = sum_i c_i``; ``a_i = share x c_i``. (EC-1's ``a_i = min(A x c_i / C, c_i)`` is the same
     number.) A slot with ``C = 0`` gives ``a_i = 0``.
   - ``static`` (EC-1 static key): ``a_i = min(s_i x A, c_i)``; what a consumer cannot use is
     surplus and is not handed to the others.

3. **Sources**: the local energy ``L = sum_i a_i`` is taken from the production meters either
   ``proportional`` to what each offered (``L_s = L x P_s / sum P``) or by ``priority`` (the first
   row up to its production, then the next, ...). Every consumer gets the same mix:
   ``a_{i,s} = a_i x L_s / L``.
4. **Grid** energy ``g_i = c_i - a_i``; **surplus** (exported) ``P_s - L_s``.

Energy is conserved in every slot: ``c_i = a_i + g_i`` and ``P_s = L_s + surplus_s``
(:meth:`Allocation.imbalance` measures both, up to float rounding).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lastgang.concept.model import Role, Site
from lastgang.concept.tariffs import AllocationKey, SourceOrder, TariffKind
from lastgang.errors import InvalidInput, Problem

__all__ = [
    "Allocation",
    "allocate",
    "allocate_site",
    "billing_sources",
    "consumer_meters",
    "consumer_units",
    "finite_or_zero",
]

FloatArray = NDArray[np.float64]

SLOT_SECONDS = 900


#: which consumer rows: an index, a slice or a list of indices
Rows = int | slice | list[int]
_Part = Callable[[slice, int, int], FloatArray]

#: rows of the consumption taken together when local and grid energy are made (a few hundred
#: KB per array: a block stays in the cache between the product, the difference and its use)
_BLOCK_ROWS = 8


@dataclass(frozen=True, eq=False)
class Allocation:
    """The result of allocating local production for ``T`` slots from ``start``.

    - ``consumption[M, T]``: the input, kWh per consumer and slot
    - ``production[S, T]``: the input, kWh per production meter and slot
    - ``available[T]``: production available to the consumers (after the balance meter)
    - ``local[M, T]``: local energy per consumer, all sources together (Eigenverbrauch)
    - ``grid[M, T]``: grid energy per consumer (Netzbezug), ``consumption - local``
    - ``handed_out[T]``: local energy of all consumers together (``local.sum(axis=0)``)
    - ``source_share[S, T]``: which fraction of every consumer's local energy came from source
      ``s`` in the slot (columns sum to 1 where any local energy was handed out, else 0)
    - ``self_consumed[S, T]``: local energy taken from each source
    - ``surplus[S, T]``: production of each source not used locally (goes to the grid)

    Local and grid energy are not kept: each is one operation per value on the consumption
    (``share[t] x c`` for the smart-me and dynamic keys, ``min(s_i x A, c)`` for the static
    key; the grid energy ``max(c - a, 0)``), so they are made where they are used, a block of
    rows at a time (:meth:`local_rows`, :meth:`grid_rows`, :meth:`blocks`), with the same
    operations on the same values as a whole ``[M, T]`` array would have: a site-year of 1,000
    consumers then needs no 560 MB for them. :attr:`local` and :attr:`grid` make the whole
    arrays (a new array on every access).

    Local energy per source is ``local[i] x source_share[s]`` (:meth:`local_from`); it is not
    stored as an ``[M, S, T]`` array to keep a year of 1,000 consumers in memory once.
    """

    consumers: tuple[str, ...]
    sources: tuple[str, ...]
    start: int
    consumption: FloatArray
    production: FloatArray
    available: FloatArray
    handed_out: FloatArray
    source_share: FloatArray
    self_consumed: FloatArray
    surplus: FloatArray
    #: the smart-me and dynamic keys: ``min(1, A / C)`` per slot (None: the static key)
    share: FloatArray | None = None
    #: the static key: each consumer's share of the available production
    static_shares: FloatArray | None = None
    #: :meth:`range_sums` by column range: consumption, local and grid energy of every
    #: consumer, and which consumers' sums are taken yet
    _sums: dict[tuple[int, int], tuple[FloatArray, FloatArray, FloatArray, NDArray[np.bool_]]] = (
        field(default_factory=dict, init=False, repr=False)
    )
    #: held while :meth:`range_sums` sums (it may run on another thread) and while a pass of
    #: :meth:`blocks` keeps its sums
    _summing: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)

    @property
    def stop(self) -> int:
        """First slot after the allocation."""
        return self.start + self.slots

    @property
    def slots(self) -> int:
        width: int = self.consumption.shape[1]
        return width

    @property
    def local(self) -> FloatArray:
        """Local energy ``[M, T]`` (made anew on every access)."""
        return self._whole(self.local_rows)

    @property
    def grid(self) -> FloatArray:
        """Grid energy ``[M, T]`` (made anew on every access)."""
        return self._whole(self.grid_rows)

    def _whole(self, part: _Part) -> FloatArray:
        out = np.empty_like(self.consumption)
        for r in range(0, len(out), _BLOCK_ROWS):
            out[r : r + _BLOCK_ROWS] = part(slice(r, r + _BLOCK_ROWS), 0, self.slots)
        return out

    def local_rows(self, rows: Rows, lo: int = 0, hi: int | None = None) -> FloatArray:
        """Local energy of the consumer rows ``rows`` (an index, a slice or a list of indices)
        in the columns ``[lo, hi)``: a new array, as ``local[rows, lo:hi]``."""
        cons = self.consumption[rows, lo:hi]
        if self.share is not None:
            return _local_energy(cons, self.share[lo:hi], None, self.available[lo:hi])
        assert self.static_shares is not None
        return _local_energy(cons, None, self.static_shares[rows], self.available[lo:hi])

    def grid_rows(
        self, rows: Rows, lo: int = 0, hi: int | None = None, local: FloatArray | None = None
    ) -> FloatArray:
        """Grid energy of ``rows`` in ``[lo, hi)`` (as ``grid[rows, lo:hi]``); ``local`` is
        their :meth:`local_rows`, if already made."""
        if local is None:
            local = self.local_rows(rows, lo, hi)
        out = np.subtract(self.consumption[rows, lo:hi], local)
        return np.maximum(out, 0.0, out=out)

    def blocks(
        self,
        rows: Sequence[int] | None = None,
        lo: int = 0,
        hi: int | None = None,
        *,
        size: int = _BLOCK_ROWS,
        sums: Sequence[tuple[int, int]] = (),
    ) -> Iterator[tuple[slice, FloatArray, FloatArray]]:
        """``(positions, local, grid)`` for ``rows`` (default: every consumer) in ``[lo, hi)``,
        ``size`` rows at a time: ``positions`` says which of ``rows`` the block holds. Runs of
        consecutive rows are taken as slices (no copy of the consumption).

        ``sums``: column ranges inside ``[lo, hi)`` whose sums :meth:`range_sums` gives, taken
        for ``rows`` from the blocks as they pass (their local and grid energy is then made once
        for both) and kept once the last block has been given (a pass stopped early keeps
        nothing)."""
        if size < 1:
            raise ValueError(f"a block needs at least one row, not {size}")
        stop = self.slots if hi is None else hi
        if any(not lo <= a <= b <= stop for a, b in sums):
            raise ValueError(f"the ranges to sum {list(sums)} are not all inside [{lo}, {stop})")
        m = len(self.consumers)
        # ranges kept for every consumer already are not summed again
        wanted = [
            r for r in dict.fromkeys(sums) if r not in self._sums or not self._sums[r][3].all()
        ]
        found = {r: (np.empty(m), np.empty(m), np.empty(m)) for r in wanted}
        count = m if rows is None else len(rows)
        for a, b in ((k, min(k + size, count)) for k in range(0, count, size)):
            picked: Rows
            if rows is None:
                picked = slice(a, b)
            elif rows[b - 1] - rows[a] == b - 1 - a and all(
                rows[k + 1] == rows[k] + 1 for k in range(a, b - 1)
            ):
                picked = slice(rows[a], rows[b - 1] + 1)
            else:
                picked = list(rows[a:b])
            local = self.local_rows(picked, lo, hi)
            grid = self.grid_rows(picked, lo, hi, local)
            if found:  # each sum that of the row's slice alone (see range_sums)
                cons = self.consumption[picked, lo:hi]
                for (x, y), taken in found.items():
                    for out, values in zip(taken, (cons, local, grid), strict=True):
                        out[picked] = values[:, x - lo : y - lo].sum(axis=1)
            yield slice(a, b), local, grid
        if found:
            where: Rows = slice(None) if rows is None else list(rows)
            with self._summing:
                for r, taken in found.items():
                    kept = self._sums.get(r)
                    if kept is None:
                        kept = self._sums[r] = (*taken, np.zeros(m, dtype=np.bool_))
                    else:
                        for into, sums_of_rows in zip(kept[:3], taken, strict=True):
                            into[where] = sums_of_rows[where]
                    kept[3][where] = True

    def range_sums(
        self, ranges: Sequence[tuple[int, int]]
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Consumption, local and grid energy of every consumer summed over each column range
        ``[a, b)`` of ``ranges``: three ``[consumers, ranges]`` arrays. Each sum is that of the
        row's slice alone (numpy sums a row of a 2-D array pairwise, exactly as the row alone).
        The sums not taken before (by this or by a pass of :meth:`blocks`) are taken in one pass
        over the rows that lack any, making their local and grid energy once for all ranges, and
        kept with the allocation (ranges already kept are returned at once, even while another
        thread sums others)."""
        if any(r not in self._sums or not self._sums[r][3].all() for r in ranges):
            with self._summing:
                todo = list(dict.fromkeys(ranges))
                lacking = np.zeros(len(self.consumers), dtype=np.bool_)
                for r in todo:
                    kept = self._sums.get(r)
                    lacking |= True if kept is None else ~kept[3]
                # those rows, for every range (the others' sums stay); with no consumer at all,
                # a pass over none keeps the ranges' empty sums
                if lacking.any() or any(r not in self._sums for r in todo):
                    lo, hi = min(a for a, _ in todo), max(b for _, b in todo)
                    rows = None if lacking.all() else np.flatnonzero(lacking).tolist()
                    for _ in self.blocks(rows, lo, hi, sums=todo):
                        pass
        picked = [self._sums[r] for r in ranges]
        return (
            np.stack([p[0] for p in picked], axis=1),
            np.stack([p[1] for p in picked], axis=1),
            np.stack([p[2] for p in picked], axis=1),
        )

    def kept_sums(self, row: int, lo: int, hi: int) -> tuple[float, float, float] | None:
        """Consumption, local and grid energy of consumer ``row`` summed over ``[lo, hi)``, if
        a pass of :meth:`blocks` or :meth:`range_sums` has taken them (else None): the same
        floats as the sums of the row's slices."""
        kept = self._sums.get((lo, hi))
        if kept is None or not kept[3][row]:
            return None
        return float(kept[0][row]), float(kept[1][row]), float(kept[2][row])

    def consumer_index(self, consumer: str) -> int:
        return self._rows[0][consumer]

    def has_consumer(self, name: str) -> bool:
        """Whether ``name`` is one of the consumers (a dictionary lookup: every bill and
        invoice asks, and a site can have 10,000 consumers)."""
        return name in self._rows[0]

    def source_index(self, source: str) -> int:
        return self._rows[1][source]

    @cached_property
    def _rows(self) -> tuple[dict[str, int], dict[str, int]]:
        """Row of each consumer and source (the first of a repeated name), built once: every
        bill and invoice of a run asks for its row."""
        consumers: dict[str, int] = {}
        for i, name in enumerate(self.consumers):
            consumers.setdefault(name, i)
        sources: dict[str, int] = {}
        for k, name in enumerate(self.sources):
            sources.setdefault(name, k)
        return consumers, sources

    def local_from(self, source: int | str) -> FloatArray:
        """Local energy ``[M, T]`` every consumer received from one source."""
        s = self.source_index(source) if isinstance(source, str) else source
        out: FloatArray = self.local * self.source_share[s]
        return out

    def local_by_source(self) -> FloatArray:
        """Local energy as one ``[M, S, T]`` array (memory: M x S x T floats)."""
        out: FloatArray = self.local[:, None, :] * self.source_share[None, :, :]
        return out

    def imbalance(self) -> float:
        """Largest absolute violation of conservation over all slots (kWh): consumption vs
        local + grid per consumer, production vs self-consumed + surplus per source, and local
        energy handed out vs self-consumed."""
        worst = 0.0
        if len(self.consumers) and self.slots:
            for rows, local, grid in self.blocks():
                gap = self.consumption[rows] - local - grid
                worst = max(worst, float(np.max(np.abs(gap))))
            handed_out = self.handed_out
            worst = max(worst, float(np.max(np.abs(handed_out - self.self_consumed.sum(axis=0)))))
        if self.production.size:
            worst = max(
                worst,
                float(np.max(np.abs(self.production - self.self_consumed - self.surplus))),
            )
        return worst


def _slot_text(slot: int) -> str:
    return datetime.fromtimestamp(slot * SLOT_SECONDS, UTC).isoformat().replace("+00:00", "Z")


def _as_matrix(values: ArrayLike, name: str) -> FloatArray:
    # rows in C order: a row's sums are then those of the row alone (see Allocation.range_sums)
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise InvalidInput(f"{name} must be a 2-D array (rows x slots), got shape {array.shape}")
    return array


def _check_values(
    array: FloatArray, names: Sequence[str], what: str, start: int, problems: list[Problem]
) -> None:
    if array.size == 0:
        return
    lowest, highest = float(array.min()), float(array.max())  # NaN propagates into both
    if math.isfinite(lowest) and lowest >= 0 and math.isfinite(highest):
        return  # the common case: two cheap reductions, no temporary arrays
    bad_nan = np.isnan(array)
    if bad_nan.any():
        for row in np.flatnonzero(bad_nan.any(axis=1)).tolist():
            cols = np.flatnonzero(bad_nan[row])
            problems.append(
                Problem(
                    f"{what} has {len(cols)} missing value(s) (NaN); substitute missing values "
                    "(Q-2) before billing",
                    meter=names[row],
                    time=_slot_text(start + int(cols[0])),
                )
            )
    bad_neg = ~bad_nan & ((array < 0) | np.isinf(array))
    if bad_neg.any():
        for row in np.flatnonzero(bad_neg.any(axis=1)).tolist():
            cols = np.flatnonzero(bad_neg[row])
            problems.append(
                Problem(
                    f"{what} has {len(cols)} negative or infinite value(s) (first "
                    f"{array[row, cols[0]]!r} kWh); energies are non-negative kWh per slot",
                    meter=names[row],
                    time=_slot_text(start + int(cols[0])),
                )
            )


def allocate(
    consumption: ArrayLike,
    production: ArrayLike,
    *,
    key: AllocationKey | str = AllocationKey.SMART_ME,
    static_shares: ArrayLike | None = None,
    balance_export: ArrayLike | None = None,
    source_order: SourceOrder | str = SourceOrder.PROPORTIONAL,
    consumers: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    start: int = 0,
) -> Allocation:
    """Allocate production ``[S, T]`` to consumption ``[M, T]`` slot by slot (SM-5, EC-1).

    ``key`` picks the rule (``smart-me``, ``dynamic``, ``static``); ``static`` needs
    ``static_shares`` (one share per consumer, sum <= 1). ``balance_export`` (``[T]``, kWh
    exported at the grid connection) switches on balance-meter mode. With ``source_order =
    'priority'`` row 0 of ``production`` is used first. ``consumers``/``sources`` name the rows
    (default ``c0, c1, ...``/``s0, ...``) and ``start`` is the UTC slot of column 0; both are
    only used in messages and in the result.

    Raises :class:`~lastgang.errors.InvalidInput` for NaN (missing data must be substituted
    before billing), negative values and mismatched shapes, naming the meter and the first slot.
    """
    key = AllocationKey(key)
    source_order = SourceOrder(source_order)
    cons = _as_matrix(consumption, "consumption")
    prod = _as_matrix(production, "production")
    m, t = cons.shape
    if prod.shape[1] != t:
        if prod.shape[0] == 0:
            prod = np.zeros((0, t))
        else:
            raise InvalidInput(
                f"production has {prod.shape[1]} slots but consumption has {t}; "
                "allocate the same slots"
            )
    s = prod.shape[0]
    consumer_names = tuple(consumers) if consumers is not None else tuple(f"c{i}" for i in range(m))
    source_names = tuple(sources) if sources is not None else tuple(f"s{k}" for k in range(s))
    if len(consumer_names) != m or len(source_names) != s:
        raise InvalidInput("one name per consumer row and per production row is needed")

    problems: list[Problem] = []
    _check_values(cons, consumer_names, "consumption", start, problems)
    _check_values(prod, source_names, "production", start, problems)
    export: FloatArray | None = None
    if balance_export is not None:
        export = np.asarray(balance_export, dtype=np.float64).reshape(-1)
        if export.shape != (t,):
            raise InvalidInput(f"balance-meter export needs {t} slots, got {export.shape[0]}")
        _check_values(export[None, :], ("balance meter",), "export", start, problems)
    shares: FloatArray | None = None
    if key is AllocationKey.STATIC:
        if static_shares is None:
            raise InvalidInput("the static key needs one share per consumer (static_shares)")
        shares = np.asarray(static_shares, dtype=np.float64).reshape(-1)
        if shares.shape != (m,):
            raise InvalidInput(f"static key needs {m} shares, got {shares.shape[0]}")
        if np.isnan(shares).any() or (shares < 0).any() or shares.sum() > 1 + 1e-12:
            raise InvalidInput(
                f"static shares must be between 0 and 1 and add up to at most 1, got {shares}"
            )
    if problems:
        raise InvalidInput(f"cannot allocate ({len(problems)} problem(s))", problems)

    total_production = prod.sum(axis=0)
    if export is not None:
        available = np.clip(total_production - export, 0.0, total_production)
    else:
        available = total_production

    share: FloatArray | None = None
    if key is not AllocationKey.STATIC:
        total_consumption = cons.sum(axis=0)
        share = np.zeros(t)
        with np.errstate(over="ignore"):  # a tiny consumption gives inf, capped at 1 below
            np.divide(available, total_consumption, out=share, where=total_consumption > 0)
        np.minimum(share, 1.0, out=share)
    handed_out = _handed_out(cons, share, shares, available)
    if source_order is SourceOrder.PRIORITY:
        self_consumed = np.empty_like(prod)
        remaining = handed_out.copy()
        for k in range(s):
            np.minimum(remaining, prod[k], out=self_consumed[k])
            remaining -= self_consumed[k]
        if s:
            # float dust left after the last source (local can exceed production by an ulp)
            self_consumed[s - 1] += np.maximum(remaining, 0.0)
    else:
        fraction = np.zeros_like(prod)
        np.divide(prod, total_production[None, :], out=fraction, where=total_production > 0)
        self_consumed = fraction * handed_out[None, :]
    source_share = np.zeros_like(prod)
    np.divide(self_consumed, handed_out[None, :], out=source_share, where=handed_out > 0)
    surplus = np.maximum(prod - self_consumed, 0.0)

    return Allocation(
        consumers=consumer_names,
        sources=source_names,
        start=start,
        consumption=cons,
        production=prod,
        available=available,
        handed_out=handed_out,
        source_share=source_share,
        self_consumed=self_consumed,
        surplus=surplus,
        share=share,
        static_shares=shares,
    )


def _local_energy(
    cons: FloatArray, share: FloatArray | None, shares: FloatArray | None, available: FloatArray
) -> FloatArray:
    """Local energy of consumption rows ``cons``: ``share x cons`` (smart-me and dynamic keys,
    ``share`` per slot) or ``min(shares x available, cons)`` (static key, ``shares`` per row)."""
    if share is not None:
        out: FloatArray = np.multiply(cons, share)
        return out
    assert shares is not None, "the static key needs each consumer's share"
    offered: FloatArray = np.multiply.outer(shares, available)
    return np.minimum(offered, cons, out=offered)


def _handed_out(
    cons: FloatArray, share: FloatArray | None, shares: FloatArray | None, available: FloatArray
) -> FloatArray:
    """The local energy of all consumers per slot, ``local.sum(axis=0)`` without the ``[M, T]``
    array: numpy sums over the first axis by adding one row after the other to the first, so
    adding each row of local energy as it is made gives the same bits."""
    if not len(cons):
        return np.zeros(cons.shape[1])
    out: FloatArray | None = None
    for r in range(0, len(cons), _BLOCK_ROWS):
        rows = slice(r, r + _BLOCK_ROWS)
        part = None if shares is None else shares[rows]
        local = _local_energy(cons[rows], share, part, available)
        for row in local:
            if out is None:
                out = row.copy()
            else:
                out += row
    assert out is not None
    return out


def finite_or_zero(values: ArrayLike) -> FloatArray:
    """A float64 copy of ``values`` with ``NaN`` and infinities as 0: a missing value counts as
    0 kWh in an allocation (its quarter hour is marked by the quality, not by the number)."""
    out: FloatArray = np.array(values, dtype=np.float64)
    np.copyto(out, 0.0, where=~np.isfinite(out))
    return out


def _stack(rows: Sequence[FloatArray]) -> FloatArray:
    """``np.vstack(rows)``; rows that are consecutive rows of one C-contiguous 2-D float array
    come back as a view of those rows, not a copy (a site-year of 1,000 consumers is 280 MB)."""
    first = rows[0] if rows else None
    base = first.base if first is not None and first.ndim == 1 else None
    if (
        first is not None
        and isinstance(base, np.ndarray)
        and base.ndim == 2
        and base.dtype == np.float64
        and base.flags.c_contiguous
        and first.shape == (base.shape[1],)
    ):
        offset, rest = divmod(first.ctypes.data - base.ctypes.data, base.strides[0])
        if (
            rest == 0
            and offset >= 0
            and offset + len(rows) <= base.shape[0]
            and all(
                row.base is base
                and row.shape == first.shape
                and row.ctypes.data == first.ctypes.data + k * base.strides[0]
                for k, row in enumerate(rows)
            )
        ):
            view: FloatArray = base[offset : offset + len(rows)]
            return view
    stacked: FloatArray = np.vstack(rows)
    return stacked


def billing_sources(site: Site) -> tuple[str, ...]:
    """Production meters whose energy is billed locally: the meters of the site's ``local`` and
    ``battery`` tariffs, in ``[billing] sources`` order first, then in order of the tariffs."""
    used: list[str] = []
    for tariff in site.tariffs:
        local = tariff.kind in (TariffKind.LOCAL, TariffKind.BATTERY)
        if local and tariff.meter is not None and tariff.meter not in used:
            used.append(tariff.meter)
    ordered = [meter for meter in site.billing.sources if meter in used]
    return tuple(ordered + [meter for meter in used if meter not in ordered])


def consumer_units(site: Site) -> tuple[str, ...]:
    """Billing units that consume: units with at least one meter of role ``consumer``
    (location or virtual meter), in the order of the site file."""
    return tuple(consumer_meters(site))


def consumer_meters(site: Site) -> dict[str, tuple[str, ...]]:
    """The meters of role ``consumer`` of every billing unit that has one (by unit id, units in
    the order of the site file, the first of a duplicated id; meters in the unit's order)."""
    roles = {item.id: item.role for item in site.meter_ids().values()}
    out: dict[str, tuple[str, ...]] = {}
    for unit in site.units:
        meters = tuple(m for m in unit.meters if roles.get(m) is Role.CONSUMER)
        if meters and unit.id not in out:
            out[unit.id] = meters
    return out


def allocate_site(
    site: Site,
    consumption: Mapping[str, ArrayLike],
    production: Mapping[str, ArrayLike],
    *,
    balance_export: ArrayLike | None = None,
    start: int = 0,
) -> Allocation:
    """:func:`allocate` with the rule of the site's ``[billing]`` section.

    ``consumption`` maps billing unit id -> kWh per slot (the unit's import), ``production`` maps
    production meter id -> kWh per slot (its production, i.e. export of a production meter).
    Sources are ordered as :func:`billing_sources` says; every billed source must be given.
    ``balance_export`` is required when ``[billing] balance_meter`` is set.
    """
    settings = site.billing
    source_ids = [meter for meter in billing_sources(site) if meter in production]
    missing = [meter for meter in billing_sources(site) if meter not in production]
    extra = [meter for meter in production if meter not in source_ids]
    problems = [
        Problem(f"no production given for the billed source {meter!r}", meter=meter)
        for meter in missing
    ] + [
        Problem(
            f"production given for {meter!r}, which no local or battery tariff prices",
            meter=meter,
        )
        for meter in extra
    ]
    if settings.balance_meter is not None and balance_export is None:
        problems.append(
            Problem(
                "balance-meter mode is configured: give the export measured at the grid connection",
                meter=settings.balance_meter,
            )
        )
    if problems:
        raise InvalidInput(f"cannot allocate site {site.site.id}", problems)
    unit_ids = list(consumption)
    n_slots = len(np.asarray(next(iter(consumption.values())))) if consumption else 0
    if not unit_ids and production:
        n_slots = len(np.asarray(next(iter(production.values()))))
    cons = (
        _stack([np.asarray(consumption[u], dtype=np.float64) for u in unit_ids])
        if unit_ids
        else np.zeros((0, n_slots))
    )
    prod = (
        np.vstack([np.asarray(production[m], dtype=np.float64) for m in source_ids])
        if source_ids
        else np.zeros((0, n_slots))
    )
    shares = None
    if settings.allocation is AllocationKey.STATIC:
        shares = [float(settings.static_shares.get(u, 0)) for u in unit_ids]
    return allocate(
        cons,
        prod,
        key=settings.allocation,
        static_shares=shares,
        balance_export=balance_export if settings.balance_meter is not None else None,
        source_order=settings.source_order,
        consumers=unit_ids,
        sources=source_ids,
        start=start,
    )
