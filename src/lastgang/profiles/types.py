"""The load profile (Lastgang) type shared by every stage after the readings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lastgang.quality import Quality

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class LoadProfile:
    """15-minute import and export energy of one metering location (Lastgang).

    ``start`` is the UTC slot number of the first value (slot ``n`` covers
    ``[n*900 s, (n+1)*900 s)`` from the Unix epoch, see :mod:`lastgang.timegrid`). Energies are
    non-negative kWh, primary values (transformer constants applied), never rounded (TOR-7.2).
    A slot without a value holds ``NaN`` in both energy arrays and ``Quality.MISSING``.

    ``batch`` records, per slot, the raw batch (archive entry) the value came from (0 = none);
    ``meter`` the index into ``meters`` of the physical meter that produced it (-1 = none;
    TOR-4.1m), where ``meters`` holds keys ``"manufacturer:serial"``. Both are signed integers
    of any width: profiles built here use ``int64`` and ``int32``, the store reads them as
    ``int32`` and ``int16`` where they fit (a site-year of 1,000 metering points: 0.2 GB less).
    """

    start: int
    import_kwh: FloatArray
    export_kwh: FloatArray
    quality: NDArray[np.int8]
    batch: NDArray[np.signedinteger[Any]] = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )
    meter: NDArray[np.signedinteger[Any]] = field(
        default_factory=lambda: np.zeros(0, dtype=np.int32)
    )
    meters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.import_kwh)
        if len(self.export_kwh) != n or len(self.quality) != n:
            raise ValueError("import, export and quality must have the same length")
        if len(self.batch) == 0 and n:
            object.__setattr__(self, "batch", np.zeros(n, dtype=np.int64))
        if len(self.meter) == 0 and n:
            object.__setattr__(self, "meter", np.full(n, -1, dtype=np.int32))
        if len(self.batch) != n or len(self.meter) != n:
            raise ValueError("batch and meter must have one entry per slot")

    @property
    def stop(self) -> int:
        """First slot after the profile."""
        return self.start + len(self.import_kwh)

    def __len__(self) -> int:
        return len(self.import_kwh)

    @classmethod
    def empty(cls, start: int, stop: int) -> LoadProfile:
        """A profile of ``stop - start`` missing slots."""
        n = stop - start
        nan = np.full(n, np.nan)
        return cls(start, nan, nan.copy(), np.full(n, Quality.MISSING, dtype=np.int8))

    def window(self, start: int, stop: int) -> LoadProfile:
        """The slots ``[start, stop)``; slots outside this profile come back missing."""
        out = LoadProfile.empty(start, stop)
        lo, hi = max(start, self.start), min(stop, self.stop)
        if lo < hi:
            src = slice(lo - self.start, hi - self.start)
            dst = slice(lo - start, hi - start)
            out.import_kwh[dst] = self.import_kwh[src]
            out.export_kwh[dst] = self.export_kwh[src]
            out.quality[dst] = self.quality[src]
            out.batch[dst] = self.batch[src]
            out.meter[dst] = self.meter[src]
        return LoadProfile(
            start, out.import_kwh, out.export_kwh, out.quality, out.batch, out.meter, self.meters
        )

    def swapped(self) -> LoadProfile:
        """Import and export exchanged (an inverted meter, SM-2)."""
        return LoadProfile(
            self.start,
            self.export_kwh,
            self.import_kwh,
            self.quality,
            self.batch,
            self.meter,
            self.meters,
        )
