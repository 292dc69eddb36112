"""Use-cases of lastgang: what the CLI (and later an API) calls. Never SQL here; the store does
I/O, the core does the rules.

- :func:`apply_site`: check a site configuration and store it as the site's next version.
- :func:`import_files` / :func:`import_bytes`: archive input files unchanged (TOR-7.1), store
  their readings and rebuild the load profiles they touch.
- :func:`build_profiles`: (re)build the 15-minute profiles of locations over a time span from the
  stored readings: registers, phases and interval values -> profile, substitute values for gaps
  (Q-2), merged with the stored values (later measurements replace substitutes; replaced values
  go to the history table).
- :func:`rebuild_profiles`: replay the site's whole raw archive with the current configuration.
- :func:`export_profile`: a metering point's profile over local days at a resolution, as CSV.

Every import, apply and rebuild happens completely or not at all: each is one store
transaction, except the whole rebuild (also one a version applied makes), which commits its
batches one by one under a stand-in of the site and gives the site their rows in one transaction
at the end (:func:`_rebuild_whole`).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import glob
import hashlib
import io
import os
import pickle
import shutil
import sys
import tempfile
from collections.abc import (
    Callable,
    Collection,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lastgang.concept.load import load_site, parse_site
from lastgang.concept.model import Location, Meter, Site
from lastgang.concept.validate import check_site
from lastgang.errors import ConceptError, InvalidInput, MeterDataError, Problem, StoreError
from lastgang.ids import is_metering_point_id, parse_metering_point_id
from lastgang.ingest.csv_readings import (
    ParsedFile,
    SiteIndex,
    parse_interval_pieces,
    pieces_to_read,
    read_in_pieces,
)
from lastgang.ingest.dispatch import (
    ImportOptions,
    InputFile,
    csv_imported,
    csv_kind,
    expand_paths,
    options_from_factors,
    parse_input,
)
from lastgang.ingest.eda_import import SERIES_LOCATION_PREFIX
from lastgang.ingest.rows import ImportedFile
from lastgang.profiles import (
    build_location_profile,
    fill_gaps,
    intervals_to_profile,
    merge_measured,
)
from lastgang.profiles.readings import IntervalSeries, MeterReadings
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.store import BatchInfo, FilePiece, IntervalRows, ReadingSet, SiteVersion, Store
from lastgang.timegrid import (
    SLOT_SECONDS,
    aggregate,
    end_labels,
    local_days,
    parse_resolution,
    period_slots,
)

__all__ = [
    "BUILD_LOCATIONS",
    "HISTORY_DAYS",
    "ApplyResult",
    "FileResult",
    "ProfileTable",
    "RebuildResult",
    "apply_site",
    "apply_site_text",
    "build_profiles",
    "export_profile",
    "import_bytes",
    "import_files",
    "locations_listed",
    "rebuild_profiles",
    "resolve_target",
]

#: profiles built and stored together (locations with the same span)
BUILD_LOCATIONS = 250

#: days of stored profile before and after a rebuilt span handed to substitute values as history
#: (comparable days are searched 28 days either way, Q-2)
HISTORY_DAYS = 29

Progress = Callable[[str, int, int], None]
"""``progress(what, done, total)``: called while a long operation runs."""

ReadingSource = Callable[[Sequence[Location], int, int], dict[str, dict[str, MeterReadings]]]
"""``readings(locations, start, stop)``: readings per location id (meter key -> readings) over
the slots ``[start, stop)``, as :func:`_readings_for` reads them from the store."""


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------
# site versions


@dataclass(frozen=True)
class ApplyResult:
    """What :func:`apply_site` stored."""

    version: SiteVersion
    warnings: tuple[Problem, ...]
    #: locations whose meter facts differ from the previous version
    changed_locations: tuple[str, ...]
    #: the profiles were rebuilt from the archive because meter facts changed
    rebuilt: RebuildResult | None = None
    #: locations whose readings await a rebuild by this version (``None``: every location):
    #: applied without its rebuild, or changed in more than its meters
    pending: frozenset[str] | None = frozenset()


def _metering_points(site: Site) -> dict[str, tuple[str, str]]:
    """Canonical metering point ID -> (location id, direction) of a site."""
    out: dict[str, tuple[str, str]] = {}
    for loc in site.locations:
        for direction, text in (
            ("import", loc.metering_points.import_),
            ("export", loc.metering_points.export),
        ):
            if text and is_metering_point_id(text):
                out[parse_metering_point_id(text).canonical] = (loc.id, direction)
    return out


def _change_from(a: Meter | None, b: Meter | None, tz: str) -> datetime:
    """First instant from which replacing meter ``a`` by ``b`` (either may be absent) changes
    anything: the installation, or the earlier removal when only the removal moved."""
    if a is None or b is None:
        meter = a if a is not None else b
        assert meter is not None
        return meter.installed_at(tz)
    if a.model_copy(update={"removed": None}) == b.model_copy(update={"removed": None}):
        ends = [x for x in (a.removed_at(tz), b.removed_at(tz)) if x is not None]
        return min(ends)
    return min(a.installed_at(tz), b.installed_at(tz))


def _changes(old: Site | None, new: Site) -> tuple[tuple[str, ...], datetime | None]:
    """Locations whose meters changed, and the first instant a change applies from."""
    tz = new.site.timezone
    before: dict[str, dict[str, Meter]] = {}
    if old is not None:
        before = {loc.id: {m.key: m for m in loc.meters} for loc in old.locations}
    after = {loc.id: {m.key: m for m in loc.meters} for loc in new.locations}
    changed: list[str] = []
    instants: list[datetime] = []
    for loc_id in sorted(set(before) | set(after)):
        old_meters, new_meters = before.get(loc_id, {}), after.get(loc_id, {})
        touched = False
        for key in sorted(set(old_meters) | set(new_meters)):
            a, b = old_meters.get(key), new_meters.get(key)
            if a is not None and b is not None and a == b:
                continue
            touched = True
            instants.append(_change_from(a, b, tz))
        if touched:
            changed.append(loc_id)
    return tuple(changed), (min(instants).astimezone(UTC) if instants else None)


def _read_otherwise(old: Site | None, new: Site) -> tuple[str, ...] | None:
    """Locations whose readings ``new`` reads otherwise than ``old``: those defined differently
    (meters, metering point IDs, role, standard load profile; not the name or the wiring) or by
    one of them only; ``None``: every location, when the time zone differs. A location defined
    alike in both is read alike: a reading is placed by its own meter, metering point ID or
    location, and its profile is built from its location's readings and stored values alone."""
    if old is None:
        return ()
    if old.site.timezone != new.site.timezone:
        return None
    before = {loc.id: _as_read(loc) for loc in old.locations}
    after = {loc.id: _as_read(loc) for loc in new.locations}
    return tuple(sorted(i for i in before.keys() | after.keys() if before.get(i) != after.get(i)))


def _as_read(location: Location) -> dict[str, Any]:
    """What of a location its readings are read and its profile built with: all but the name
    and the wiring (``upstream``), which only the billing uses."""
    return location.model_dump(exclude={"name", "upstream"})


def apply_site(
    store: Store,
    path: str | Path,
    *,
    now: datetime | None = None,
    rebuild: bool = True,
    progress: Progress | None = None,
) -> ApplyResult:
    """Load a site TOML file, check it (refused on errors, warnings returned) and store it as the
    site's next version; see :func:`apply_site_text`."""
    file = Path(path)
    load_site(file)  # reports a missing or unreadable file with its own message
    text = file.read_bytes().decode("utf-8")
    return apply_site_text(store, text, str(file), now=now, rebuild=rebuild, progress=progress)


def apply_site_text(
    store: Store,
    text: str,
    source: str,
    *,
    now: datetime | None = None,
    rebuild: bool = True,
    progress: Progress | None = None,
) -> ApplyResult:
    """Check a site configuration and store it as the site's next version (older versions are
    kept). Errors of :func:`~lastgang.concept.validate.check_site` refuse it
    (:class:`~lastgang.errors.ConceptError`); a metering point ID that belongs to another
    location refuses it (:class:`~lastgang.errors.StoreError`, TOR-4.1).

    A version whose meter facts changed (meters added, removed, exchanged, other transformer
    ratios, ...) takes effect from the first instant it changes (``effective_from``). When the
    site already has imported data and ``rebuild`` is set, its profiles are rebuilt from the
    raw archive with the new configuration, together with the version: in the same
    transaction, or where the rebuild covers every location batch by batch into a stand-in
    that replaces the site in the transaction that saves the version (:func:`_rebuild_whole`;
    a version the store refuses is refused before that replay)."""
    site = parse_site(text, source)
    problems = [
        Problem(
            p.reason,
            file=p.file or source,
            line=p.line,
            column=p.column,
            meter=p.meter,
            time=p.time,
            severity=p.severity,
        )
        for p in check_site(site)
    ]
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ConceptError(
            f"{source}: the site configuration has {len(errors)} error(s); nothing was applied",
            problems,
        )
    warnings = tuple(p for p in problems if p.severity == "warning")
    applied_at = now or _now()
    site_id = site.site.id
    with store.exclusive():
        previous: Site | None = None
        current = 0  # the version the site has
        if site_id in store.site_ids():
            latest = store.site_version(site_id)
            previous, current = latest.site, latest.version
        changed, effective = _changes(previous, site)
        data = previous is not None and store.batch_count(site_id) > 0
        stale = _read_otherwise(previous, site) if data else ()
        rebuilt = None
        if data and rebuild and changed and _whole_after(store, site, stale):
            # every location: replayed into a stand-in, the version saved with the swap; one the
            # store refuses (a metering point ID of another location) is refused before that
            points = _metering_points(site)
            store.check_metering_points(site_id, points)
            saved: list[SiteVersion] = []

            def save() -> None:
                saved.append(
                    store.save_site_version(site, text, source, points, applied_at, effective)
                )

            rebuilt = _rebuild_whole(
                store, site, applied_at, progress, version=current, before_swap=save
            )
            return ApplyResult(saved[0], warnings, changed, rebuilt, frozenset())
        with store.transaction():
            version = store.save_site_version(
                site, text, source, _metering_points(site), applied_at, effective
            )
            if data:
                if stale is None or stale:
                    store.mark_rebuild_pending(site_id, stale)
                if rebuild and changed:
                    rebuilt = rebuild_profiles(
                        store, site_id, now=applied_at, progress=progress, pending=True
                    )
            pending = store.rebuild_pending(site_id)
    return ApplyResult(version, warnings, changed, rebuilt, pending)


def _whole_after(store: Store, site: Site, stale: Collection[str] | None) -> bool:
    """Whether the rebuild of a version with the locations ``stale`` read otherwise (``None``:
    every location) is whole: the locations pending after it, widened as
    :func:`rebuild_profiles` widens them, are all of them."""
    site_id = site.site.id
    pending = store.rebuild_pending(site_id)
    if pending is None or stale is None:
        return True
    scope = _rebuild_scope(store, SiteIndex(site), store.batches(site_id), pending | set(stale))
    return scope[0] is None


# ---------------------------------------------------------------------------------------------
# imports


@dataclass(frozen=True)
class FileResult:
    """The outcome of importing one file (a row of the import summary)."""

    file: str
    kind: str
    rows: int
    batch: int
    #: metering locations with readings in the file
    metering_points: int
    #: profile slots (re)built
    slots: int
    status: str
    already_imported: bool = False
    locations: tuple[str, ...] = ()
    #: what the reader noticed without refusing the file
    warnings: tuple[Problem, ...] = ()


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _parse(
    content: bytes,
    source: str,
    index: SiteIndex,
    format: str = "auto",
    options: ImportOptions | None = None,
    store: Store | None = None,
    skip: Collection[str] = (),
    stored_as: str | None = None,
) -> ImportedFile:
    """The readings of one input file in ``format`` (see :mod:`lastgang.ingest.dispatch`);
    with ``store``, readers that join an input with stored series can read them (those of the
    site, or stored under the id ``stored_as``: a rebuild's stand-in); the rows of the
    locations ``skip`` may be left out."""
    lookup = None
    if store is not None:
        site_id = index.site.site.id if stored_as is None else stored_as

        def lookup(keys: Sequence[str], start: int, stop: int) -> dict[str, IntervalSeries]:
            found = store.readings(site_id, keys, start * SLOT_SECONDS, stop * SLOT_SECONDS)
            return {k: r.intervals for k, r in found.items() if r.intervals is not None}

    return parse_input(content, source, index, format, options, lookup, skip)


def _parse_archived(
    store: Store,
    info: BatchInfo,
    index: SiteIndex,
    skip: Collection[str] = (),
    read: Callable[[int, int], None] | None = None,
    stored_as: str | None = None,
) -> ImportedFile:
    """:func:`_parse` of an archived batch (joined with the stored series of the site, or of
    ``stored_as``). A large file of interval values is read from the
    archive part by part as it is inflated (:func:`parse_interval_pieces`), never held whole,
    telling ``read`` how many bytes have been read after each part, of how many it reads;
    one the piecewise reader
    does not take is read whole, as at its import. Of a file whose pieces were kept
    (:meth:`~lastgang.store.Store.batch_pieces`), only the pieces holding rows not of the
    locations ``skip`` are read (their file has ``pieces`` None: it was not read whole)."""
    if info.format == "csv/intervals" and read_in_pieces(info.size):
        kept = store.batch_pieces(info.batch) if skip else None
        ranges = pieces_to_read(kept, index, skip) if kept else []
        parts: Generator[bytes, None, None]
        if kept and ranges:  # the header line, then the pieces holding rows of those read
            sections = [(0, kept[0].start), *ranges]
            parts = (part for a, b in sections for part in store.batch_range(info.batch, a, b))
            total = sum(b - a for a, b in sections)
        else:
            parts, total = store.batch_parts(info.batch), info.size
        counted = None if read is None else functools.partial(_read_of, read, total)
        with contextlib.closing(parts):
            parsed = parse_interval_pieces(_counted(parts, counted), index, info.source, skip=skip)
        if parsed is not None:  # the pieces of a file read in part are not the file's
            return csv_imported(replace(parsed, pieces=None) if ranges else parsed)
    return _parse(
        store.batch_content(info.batch),
        info.source,
        index,
        info.format,
        options_from_factors(info.factors),
        store,
        skip=skip,
        stored_as=stored_as,
    )


def _read_of(read: Callable[[int, int], None], total: int, done: int) -> None:
    """``read`` told the bytes ``done`` of the ``total`` a read takes."""
    read(done, total)


def _counted(parts: Iterable[bytes], read: Callable[[int], None] | None) -> Iterator[bytes]:
    """``parts`` as they are, telling ``read`` how many bytes have passed after each."""
    done = 0
    for part in parts:
        yield part
        done += len(part)
        if read is not None:
            read(done)


def import_bytes(
    store: Store,
    site_id: str,
    content: bytes,
    source: str,
    *,
    now: datetime | None = None,
    format: str = "auto",
    options: ImportOptions | None = None,
) -> FileResult:
    """Import one input given as bytes; see :func:`import_files`."""
    return _import_many(
        store,
        site_id,
        [InputFile.of_bytes(source, content)],
        now=now,
        progress=None,
        format=format,
        options=options,
    )[0]


def import_files(
    store: Store,
    site_id: str,
    paths: Sequence[str | Path],
    *,
    now: datetime | None = None,
    progress: Progress | None = None,
    format: str = "auto",
    options: ImportOptions | None = None,
) -> list[FileResult]:
    """Import files of readings into a site.

    ``paths`` are files, folders (read recursively) and zip archives (each member is its own
    input, ``archive.zip!member``); ``format`` and ``options`` say how to read them
    (:func:`lastgang.ingest.dispatch.parse_input`).

    All files are read and checked first; if any has a problem, nothing is imported and every
    problem of every file is raised together (:class:`~lastgang.errors.InvalidInput`). Then each
    file is imported in its own transaction: its bytes are archived unchanged with their SHA-256
    and the conversion factors in force (TOR-7.1), its readings stored, and the load profiles of
    the locations it touches rebuilt over the span it touches. A file whose bytes were imported
    before is skipped ("already imported, batch N")."""
    inputs = expand_paths(paths)
    return _import_many(
        store, site_id, inputs, now=now, progress=progress, format=format, options=options
    )


#: bytes of readings (and of the inputs parsed again when stored: EDA) kept in memory from the
#: check to the import; the readings of the files beyond that wait in a temporary file (in a
#: folder beside the store file, removed when the import ends) and their bytes are read again
#: (their SHA-256 checked again) when their turn comes, so a folder of large files needs the
#: memory of about one of them
CHECKED_BYTES_KEPT = 512 * 2**20


@dataclass
class _Checked:
    """One input after the check: its readings kept (``file``), or in a temporary file
    (``spilled``), or neither (an input already imported). Its bytes are kept (``content``)
    only where the import needs them again (EDA messages are parsed again when stored); the
    others are archived from what :meth:`~lastgang.store.Store.prepare_batch` prepared, or
    read again (``size`` bytes; part by part when it was checked so: ``in_parts``)."""

    item: InputFile
    digest: str
    content: bytes | None = None
    file: ImportedFile | None = None
    spilled: Path | None = None
    size: int = 0
    in_parts: bool = False


def _import_many(
    store: Store,
    site_id: str,
    inputs: Sequence[InputFile],
    *,
    now: datetime | None,
    progress: Progress | None,
    format: str = "auto",
    options: ImportOptions | None = None,
) -> list[FileResult]:
    try:
        # readings put aside go next to the store, whose disk holds data of that size (the
        # system's temporary folder may be memory)
        location = Path(store.location)
        beside = location.parent if location.is_file() else None
        named = f"{location.name}-" if beside is not None else ""
        prefix = f"{_SPILL}{named}{os.getpid()}-"
        if beside is not None:
            _remove_left_behind(beside, location.name)
        with tempfile.TemporaryDirectory(prefix=prefix, dir=beside) as spill:
            return _import_checked(
                store,
                site_id,
                inputs,
                Path(spill),
                now=now,
                progress=progress,
                format=format,
                options=options,
            )
    finally:
        store.drop_prepared()


def _changed(source: str, before: int) -> InvalidInput:
    return InvalidInput(
        f"{source} changed after it was checked; it was not imported"
        + (f" (the {before} input(s) before it were)" if before else ""),
        [
            Problem(
                "the file's bytes are not those checked (SHA-256 differs): import it again",
                file=source,
            )
        ],
    )


def _mb(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


def _same_bytes(item: InputFile, digest: str, before: int) -> bytes:
    """The bytes of an input read again, which must be those checked (``digest``);
    ``before`` inputs of the same import were imported before it."""
    content = item.content()
    if _sha256(content) != digest:
        raise _changed(item.source, before)
    return content


#: bytes read at a time where a file is hashed part by part
_HASHED_BYTES = 16 * 1024 * 1024


def _sha256_of(item: InputFile) -> str:
    """SHA-256 of an input, read part by part (a file on disk is never held whole)."""
    digest = hashlib.sha256()
    for part in item.parts(_HASHED_BYTES):
        digest.update(part)
    return digest.hexdigest()


def _large_intervals(item: InputFile, format: str, size: int) -> bool:
    """Whether an input is a file on disk of interval values (of ``size`` bytes) large enough
    to be read in pieces (:func:`~lastgang.ingest.csv_readings.read_in_pieces`), told by its
    first line."""
    if item.path is None or format not in ("auto", "csv") or not read_in_pieces(size):
        return False
    return csv_kind(item.head(64 * 1024), item.source) == "intervals"


class _HashedParts:
    """An input's parts as they are read (``parts(size)``, for
    :meth:`~lastgang.store.Store.prepare_parts`), hashed and counted as they pass; ``read`` is
    told how many bytes have been read after each part."""

    def __init__(self, item: InputFile, read: Callable[[int], None] | None = None) -> None:
        self.item = item
        self.read = read
        self.sha256 = hashlib.sha256()
        self.size = 0

    def __call__(self, size: int) -> Iterator[bytes]:
        for part in _counted(self.item.parts(size), self.read):
            self.sha256.update(part)
            self.size += len(part)
            yield part

    def must_be(self, digest: str, store: Store, *, before: int) -> None:
        """Refuse the input (and let its prepared archive go) when the bytes that passed are
        not those checked; ``before`` inputs of the same import were imported before it."""
        if self.sha256.hexdigest() != digest:
            store.drop_prepared(digest)
            raise _changed(self.item.source, before)


def _checked_in_parts(
    store: Store,
    item: InputFile,
    digest: str,
    index: SiteIndex,
    read: Callable[[int], None] | None = None,
) -> tuple[ImportedFile, int] | None:
    """A large file of interval values on disk checked part by part, its archive prepared from
    the same parts as they pass (:meth:`~lastgang.store.Store.prepare_parts`): the file read,
    and how many bytes it has. None (nothing prepared) when the piecewise reader does not take
    it: the caller reads it whole, which lists its problems. The parts must be the bytes hashed
    before (``digest``). ``read`` is told how many bytes have been read after each part."""
    hashed = _HashedParts(item, read)
    with contextlib.closing(store.prepare_parts(digest, hashed)) as parts:
        parsed = parse_interval_pieces(parts, index, item.source)
        if parsed is not None:
            for _ in parts:  # whatever the reader left (blank lines at the end): archived too
                pass
    if parsed is None:
        return None
    hashed.must_be(digest, store, before=0)
    return csv_imported(parsed), hashed.size


def _archived_in_parts(store: Store, item: InputFile, digest: str, before: int) -> None:
    """Prepare the archive of a file on disk again, part by part (its preparation during the
    check was let go); the parts must be the bytes checked (``digest``)."""
    hashed = _HashedParts(item)
    for _ in store.prepare_parts(digest, hashed):
        pass
    hashed.must_be(digest, store, before=before)


def _parsed_again(format: str) -> bool:
    """Whether an input of ``format`` is parsed again when it is stored: an EDA message is
    joined with the series already stored just before it is stored (so its bytes are kept)."""
    return format == "eda"


#: the folder of an import's readings put aside: ``{_SPILL}{store file}-{process id}-...``
_SPILL = ".lastgang-import-"


def _remove_left_behind(folder: Path, store_name: str) -> None:
    """Remove what an import of the store killed outright left behind: the folders of readings
    put aside by a process that no longer runs (a running one's are its own)."""
    prefix = f"{_SPILL}{store_name}-"
    for left in folder.glob(f"{glob.escape(prefix)}*"):
        pid = left.name[len(prefix) :].split("-", 1)[0]
        if not pid.isdigit() or _running(int(pid)) or not left.is_dir() or left.is_symlink():
            continue
        shutil.rmtree(left, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, another user's
        return True
    return True


def _import_checked(
    store: Store,
    site_id: str,
    inputs: Sequence[InputFile],
    spill: Path,
    *,
    now: datetime | None,
    progress: Progress | None,
    format: str = "auto",
    options: ImportOptions | None = None,
) -> list[FileResult]:
    version = store.site_version(site_id)
    site = version.site
    index = SiteIndex(site)
    checked: list[_Checked] = []
    problems: list[Problem] = []
    total = len(inputs)
    seen: dict[str, str] = {}
    kept = 0
    for i, item in enumerate(inputs):
        if progress is not None:
            progress(f"checking {item.source}", i, total)
        # a large file of interval values is read part by part, never held whole
        file_size = item.size() if item.path is not None else 0
        in_parts = _large_intervals(item, format, file_size)
        content = None if in_parts else item.content()
        digest = _sha256_of(item) if content is None else _sha256(content)
        if store.find_batch(site_id, digest) is not None or digest in seen:
            checked.append(_Checked(item, digest))
            continue
        seen[digest] = item.source
        read = None
        if in_parts:
            head, tail = f"checking {item.source} (", f" of {_mb(file_size)})"

            def checking(done: int, head: str = head, tail: str = tail, i: int = i) -> None:
                if progress is not None:
                    progress(head + _mb(done) + tail, i, total)

            found = _checked_in_parts(store, item, digest, index, checking)
            if found is not None:
                read, file_size = found  # the bytes hashed and archived
        if read is None:
            if content is None:  # the piecewise reader did not take it: read whole
                content = _same_bytes(item, digest, 0)
            store.prepare_batch(content, digest)  # the archive's compression overlaps the check
            try:
                read = _parse(content, item.source, index, format, options)
            except InvalidInput as exc:
                problems.extend(exc.problems or (Problem(exc.message, file=item.source),))
                continue
        # the bytes are let go once checked (their archive is being prepared), unless the
        # import parses them again
        again = content if _parsed_again(read.format) else None
        size = (0 if again is None else len(again)) + read.readings.nbytes
        length = file_size if content is None else len(content)
        parts = content is None
        if total == 1 or kept + size <= CHECKED_BYTES_KEPT:
            kept += size
            checked.append(_Checked(item, digest, again, read, size=length, in_parts=parts))
        else:  # its readings wait on disk, its bytes are read again (and compressed then)
            store.drop_prepared(digest)
            path = spill / f"{i}.pickle"
            with path.open("wb") as out:
                pickle.dump(read, out, protocol=pickle.HIGHEST_PROTOCOL)
            checked.append(_Checked(item, digest, spilled=path, size=length, in_parts=parts))
        del content, read, again
    if problems:
        files = len({p.file for p in problems})
        raise InvalidInput(
            f"{files} file(s) rejected, nothing imported ({len(problems)} problem(s))", problems
        )
    results: list[FileResult] = []
    for i, entry in enumerate(checked):
        source, digest = entry.item.source, entry.digest
        if progress is not None:
            progress(f"importing {source}", i, total)
        existing = store.find_batch(site_id, digest)
        if existing is not None or (entry.file is None and entry.spilled is None):
            batch = existing.batch if existing is not None else 0
            results.append(
                FileResult(
                    source,
                    existing.format.removeprefix("csv/") if existing is not None else "",
                    0,
                    batch,
                    0,
                    0,
                    f"already imported, batch {batch}",
                    already_imported=True,
                )
            )
            continue
        data, file = entry.content, entry.file
        entry.content = entry.file = None  # held only while this input is stored
        if file is None:  # its readings put aside: read them back
            assert entry.spilled is not None
            with entry.spilled.open("rb") as spilled:
                file = pickle.load(spilled)  # written by this import, in its own folder
            entry.spilled.unlink()
        if data is None and (_parsed_again(file.format) or not store.archive_prepared(digest)):
            # its bytes are needed again (to parse, or to archive): read, and the same
            if entry.in_parts and not _parsed_again(file.format):
                _archived_in_parts(store, entry.item, digest, i)
            else:
                data = _same_bytes(entry.item, digest, i)
        when = now or _now()
        with store.transaction():
            if _parsed_again(file.format):
                assert data is not None
                file = _parse(data, source, index, file.format, options, store)
            info = store.add_batch(
                site_id,
                data,
                digest,
                source,
                file.format,
                when,
                version.version,
                file.factors,
                size=entry.size,
            )
            if file.names is not None:
                store.save_batch_names(info.batch, file.names)
            if file.pieces is not None:
                store.save_batch_pieces(info.batch, file.pieces)
            slots = _store_batch(store, site, info.batch, file, when, history=True)
        results.append(
            FileResult(
                source,
                file.format.removeprefix("csv/"),
                file.rows,
                info.batch,
                len(file.locations),
                slots,
                "imported",
                locations=file.locations,
                warnings=file.warnings,
            )
        )
        del data, file  # before the next input is read
    if progress is not None:
        progress("done", total, total)
    return results


def _store_batch(
    store: Store,
    site: Site,
    batch: int,
    file: ParsedFile,
    when: datetime,
    *,
    history: bool,
    only: Collection[str] | None = None,
) -> int:
    """Store the readings of one batch and rebuild the profiles they touch (of the locations
    ``only``, if given: the batch's other readings are stored already). Returns the number of
    profile slots built."""
    site_id = site.site.id
    store.add_readings(site_id, batch, file.readings)
    memory = _MemoryReadings.of(store, site, batch, file.readings)
    try:
        return _rebuild_touched(store, site, batch, when, history=history, memory=memory, only=only)
    except MeterDataError as exc:
        raise MeterDataError(
            f"{file.source}: rejected, nothing imported: the readings do not give a consistent "
            f"load profile together with the stored ones ({len(exc.problems)} problem(s))",
            [replace(p, file=p.file or file.source) for p in exc.problems],
        ) from None


def _rebuild_touched(
    store: Store,
    site: Site,
    batch: int,
    when: datetime,
    *,
    history: bool,
    memory: _MemoryReadings | None = None,
    only: Collection[str] | None = None,
) -> int:
    site_id = site.site.id
    spans = memory.spans() if memory is not None else store.reading_spans(site_id, batch)
    owner = {m.key: loc.id for loc in site.locations for m in loc.meters}
    locations = {loc.id for loc in site.locations}
    if only is not None:
        locations &= set(only)
    by_location: dict[str, tuple[int, int]] = {}
    for key, (lo, hi) in spans.items():
        loc_id = key[1:] if key.startswith("@") else owner.get(key)
        if loc_id is None or loc_id not in locations:  # e.g. EDA series kept beside a location
            continue
        old = by_location.get(loc_id)
        by_location[loc_id] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
    return build_profiles(
        store,
        site,
        by_location,
        batch=batch,
        now=when,
        history=history,
        readings=None if memory is None else memory.readings,
    )


class _MemoryReadings:
    """The interval values of one batch as the store would give them back, taken from the
    arrays just stored instead of reading them back sorted (35 million rows of a site-year).

    Only used when they are all the store holds for the meters and locations they touch (no
    other batch, no register readings, phase samples or status events of those meters), so
    :meth:`readings` equals :func:`_readings_for` on the store; otherwise :meth:`of` gives None
    and the profiles are built from the stored readings."""

    def __init__(self, rows: IntervalRows, batch: int, site: Site) -> None:
        self.rows = rows
        self.batch = batch
        meters = len(rows.meters)
        # one group per meter key, then one per location for the values without a meter
        group = np.where(rows.meter >= 0, rows.meter, meters + rows.location).astype(np.int64)
        if len(group) > 1 and bool((group[1:] < group[:-1]).any()):
            self.order: NDArray[np.int64] | None = np.argsort(group, kind="stable")
            group = group[self.order]
        else:
            self.order = None  # the usual file: each metering point in one block
        self.names = [*rows.meters, *rows.locations]
        bounds = np.searchsorted(group, np.arange(meters + len(rows.locations) + 1))
        self.bounds = bounds
        self.slot = rows.slot if self.order is None else rows.slot[self.order]
        self.owner = {m.key: loc.id for loc in site.locations for m in loc.meters}

    @classmethod
    def of(
        cls, store: Store, site: Site, batch: int, readings: ReadingSet
    ) -> _MemoryReadings | None:
        rows = readings.intervals
        if not len(rows) or len(readings) != len(rows):
            return None
        memory = cls(rows, batch, site)
        # within a group the slots must increase strictly (one value per slot, as stored)
        slot, bounds = memory.slot, memory.bounds
        step = slot[1:] > slot[:-1]
        heads = bounds[1:-1]
        heads = heads[(heads > 0) & (heads < len(slot))]
        step[heads - 1] = True
        if not bool(step.all()):
            return None
        touched = {memory.owner.get(k, "") for k in rows.meters} | set(rows.locations)
        locations = [loc for loc in site.locations if loc.id in touched]
        keys = [m.key for loc in locations for m in loc.meters]
        if store.has_other_readings(site.site.id, batch, keys, [loc.id for loc in locations]):
            return None
        return memory

    def spans(self) -> dict[str, tuple[int, int]]:
        """:meth:`Store.reading_spans` of the batch: per location, first and last slot."""
        rows = self.rows
        location = rows.location
        count = len(rows.locations)
        lo = np.full(count, np.iinfo(np.int64).max, dtype=np.int64)
        hi = np.full(count, np.iinfo(np.int64).min, dtype=np.int64)
        starts = np.flatnonzero(np.concatenate(([True], location[1:] != location[:-1])))
        first = np.minimum.reduceat(rows.slot, starts)
        last = np.maximum.reduceat(rows.slot, starts)
        block = location[starts]
        np.minimum.at(lo, block, first)
        np.maximum.at(hi, block, last)
        return {
            "@" + name: (int(lo[i]) * SLOT_SECONDS, (int(hi[i]) + 1) * SLOT_SECONDS)
            for i, name in enumerate(rows.locations)
            if lo[i] <= hi[i]
        }

    def _series(self, g: int, start: int, stop: int) -> IntervalSeries | None:
        a, b = int(self.bounds[g]), int(self.bounds[g + 1])
        slot = self.slot[a:b]
        lo = a + int(np.searchsorted(slot, start))
        hi = a + int(np.searchsorted(slot, stop))
        if hi <= lo:
            return None
        rows = self.rows
        if self.order is None:
            pick: slice | NDArray[np.int64] = slice(lo, hi)
        else:
            pick = self.order[lo:hi]
        return IntervalSeries(
            np.ascontiguousarray(rows.slot[pick], dtype=np.int64),
            np.ascontiguousarray(rows.import_kwh[pick], dtype=np.float64),
            np.ascontiguousarray(rows.export_kwh[pick], dtype=np.float64),
            np.ascontiguousarray(rows.quality[pick], dtype=np.int8),
            np.full(hi - lo, self.batch, dtype=np.int64),
            primary=rows.primary,
        )

    def readings(
        self, locations: Sequence[Location], start: int, stop: int
    ) -> dict[str, dict[str, MeterReadings]]:
        """What :func:`_readings_for` gives for ``locations`` and the slots ``[start, stop)``."""
        index = {name: g for g, name in enumerate(self.rows.meters)}
        meters = len(self.rows.meters)
        at = {name: meters + g for g, name in enumerate(self.rows.locations)}
        out: dict[str, dict[str, MeterReadings]] = {}
        for loc in locations:
            mine: dict[str, MeterReadings] = {}
            for meter in loc.meters:
                g = index.get(meter.key)
                series = None if g is None else self._series(g, start, stop)
                if series is not None:
                    mine[meter.key] = MeterReadings(meter.key, intervals=series)
            g = at.get(loc.id)
            series = None if g is None else self._series(g, start, stop)
            if series is not None:
                mine[loc.id] = MeterReadings(loc.id, intervals=series)
            out[loc.id] = mine
        return out


# ---------------------------------------------------------------------------------------------
# profiles


@functools.lru_cache(maxsize=256)
def _whole_days(lo: int, hi: int, tz: str) -> tuple[int, int]:
    """Slots of the whole local days covering the epoch seconds ``[lo, hi]``."""
    first = lo // SLOT_SECONDS
    last = max(first + 1, -(-hi // SLOT_SECONDS))
    days = local_days(first, last, tz)
    return period_slots(days[0][0], days[-1][0], tz)


def _readings_for(
    store: Store, site_id: str, locations: Sequence[Location], start: int, stop: int
) -> dict[str, dict[str, MeterReadings]]:
    """Readings per location (meter key -> readings; interval values of a location without a
    meter under the location id)."""
    keys = [m.key for loc in locations for m in loc.meters]
    by_meter = store.readings(site_id, keys, start * SLOT_SECONDS, stop * SLOT_SECONDS)
    meterless = store.interval_readings(site_id, [loc.id for loc in locations], start, stop)
    out: dict[str, dict[str, MeterReadings]] = {}
    for loc in locations:
        mine = {m.key: by_meter[m.key] for m in loc.meters if m.key in by_meter}
        if loc.id in meterless:
            mine[loc.id] = meterless[loc.id]
        out[loc.id] = mine
    return out


def build_profiles(
    store: Store,
    site: Site,
    spans: Mapping[str, tuple[int, int]],
    *,
    batch: int = 0,
    now: datetime | None = None,
    history: bool = True,
    readings: ReadingSource | None = None,
) -> int:
    """Rebuild the profiles of locations over time spans (``location id -> [first, last]`` in
    UTC epoch seconds) from the stored readings and store them.

    Each span is widened to whole local days and, where the location's stored profile ends
    before (or starts after) it, to meet the stored profile, so no gap is left unfilled. The
    built profile gets substitute values for its gaps (Q-2) and is merged into the stored one
    (:func:`~lastgang.profiles.merge_measured`: later measurements replace substitutes, a worse
    value never replaces a better one). Substitute values computed here are recorded with
    ``batch``, the import that caused them; values that do not change keep their batch.
    ``readings`` gives the readings of locations over a slot range instead of the store (the
    import's own rows when the store holds nothing else for them). Returns the number of slots
    stored."""
    site_id = site.site.id
    tz = site.site.timezone
    when = now or _now()
    extents = store.profile_extent(site_id, list(spans))
    ranges: dict[str, tuple[int, int]] = {}
    for loc_id, (lo, hi) in spans.items():
        start, stop = _whole_days(lo, hi, tz)
        extent = extents.get(loc_id)
        if extent is not None:
            if extent[1] < start:
                start = extent[1]
            if extent[0] > stop:
                stop = extent[0]
        ranges[loc_id] = (start, stop)
    # one store round trip per distinct range (a large import touches many locations alike)
    groups: dict[tuple[int, int], list[str]] = {}
    for loc_id, rng in ranges.items():
        groups.setdefault(rng, []).append(loc_id)
    slots = 0
    day = 96
    for (start, stop), group in groups.items():
        # a few hundred locations at a time: each location's profile only depends on its own
        # readings and stored values, and the arrays of a site-year are never all held at once
        for first in range(0, len(group), BUILD_LOCATIONS):
            loc_ids = group[first : first + BUILD_LOCATIONS]
            locations = [site.location(loc_id) for loc_id in loc_ids]
            if readings is None:
                found = _readings_for(store, site_id, locations, start, stop)
            else:
                found = readings(locations, start, stop)
            h_start, h_stop = start - HISTORY_DAYS * day, stop + HISTORY_DAYS * day
            # locations with nothing stored yet (no extent) need no read of the store
            known = [loc_id for loc_id in loc_ids if loc_id in extents]
            stored = store.load_profiles(site_id, known, h_start, h_stop) if known else {}
            out: dict[str, LoadProfile] = {}
            for loc in locations:
                around = stored.pop(loc.id, None)
                if around is None:
                    around = LoadProfile.empty(h_start, h_stop)
                old = around.window(start, stop)
                past = _blank_inside(around, start, stop)
                built = _build(loc, found.pop(loc.id), start, stop, tz, past)
                filled = fill_gaps(built, tz, slp=loc.slp, history=past)
                merged = merge_measured(old, filled)
                out[loc.id] = _stamp(merged, old, batch)
            del stored, found
            if out:
                store.save_profiles(site_id, out, when, history=history)
            slots += sum(len(p) for p in out.values())
    return slots


def _build(
    location: Location,
    readings: Mapping[str, MeterReadings],
    start: int,
    stop: int,
    tz: str,
    history: LoadProfile,
) -> LoadProfile:
    """The meter-view profile of a location; a location without meters can still have interval
    values (market data filed under its metering point), taken as they are."""
    if location.meters or location.id not in readings:
        return build_location_profile(location, readings, start, stop, tz, history=history)
    series = readings[location.id].intervals
    if series is None:
        return LoadProfile.empty(start, stop)
    return intervals_to_profile(series, start, stop)


def _blank_inside(profile: LoadProfile, start: int, stop: int) -> LoadProfile:
    """``profile`` with the slots ``[start, stop)`` missing (they are being rebuilt)."""
    a, b = start - profile.start, stop - profile.start
    imp, exp = profile.import_kwh.copy(), profile.export_kwh.copy()
    quality = profile.quality.copy()
    imp[a:b] = np.nan
    exp[a:b] = np.nan
    quality[a:b] = Quality.MISSING
    return LoadProfile(
        profile.start, imp, exp, quality, profile.batch, profile.meter, profile.meters
    )


def _stamp(merged: LoadProfile, old: LoadProfile, batch: int) -> LoadProfile:
    """Provenance of the merged values: a value equal to the stored one (same energies, same
    quality) keeps the stored batch and meter (a re-delivery changes nothing); a substitute
    value computed now gets ``batch``, the import that caused it."""
    o = old.window(merged.start, merged.stop)
    same = (
        (merged.quality == o.quality)
        & _same(merged.import_kwh, o.import_kwh)
        & _same(merged.export_kwh, o.export_kwh)
    )
    unbatched = (merged.batch == 0) & (merged.quality != Quality.MISSING)
    stamped = np.where(unbatched, batch, merged.batch)
    # merge_measured lists the stored profile's meters first, so its indices stay valid
    return LoadProfile(
        merged.start,
        merged.import_kwh,
        merged.export_kwh,
        merged.quality,
        np.where(same, o.batch, stamped).astype(np.int64),
        np.where(same, o.meter, merged.meter).astype(np.int32),
        merged.meters,
    )


def _same(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.bool_]:
    result: NDArray[np.bool_] = (a == b) | (np.isnan(a) & np.isnan(b))
    return result


#: formats whose reader places every row by a name of the site (a metering point ID, location
#: id, meter key or serial; an EDA message names one metering point ID) or refuses the file,
#: and reads it with the facts of that location alone: once every location sharing a name with
#: one rebuilt is rebuilt too (:func:`_widened`), a batch of these that held no reading of them
#: gives the same rows for the same other locations when read again, and is accepted again
_PLACES_EVERY_ROW = frozenset({"csv/registers", "csv/phases", "csv/intervals", "eda"})

#: formats whose readers say the names they looked meters up by (:attr:`ImportedFile.names`),
#: which need not be names of the site (an MQTT topic's levels)
_NAMED_FORMATS = frozenset({"dlms", "mqtt"})


def _widened(
    index: SiteIndex,
    pending: Collection[str],
    names: Mapping[int, Mapping[str, str]],
    gives: Mapping[str, str],
) -> frozenset[str]:
    """The locations a partial rebuild of ``pending`` rebuilds: those; where a batch's kept
    names give other meters than they gave, the locations of every meter its names gave and
    give (a message goes to the first of its names that gives a meter, so it may move from any
    of them to any other); and every location sharing a name (id, meter key, serial) with one
    of these, since a row naming it may now go to the other or be ambiguous. A location defined
    alike and sharing no name with these gets the same rows from every batch. ``gives``: what
    each kept name gives now (:meth:`SiteIndex.meter_named`)."""
    owner = {key: info.location for key, info in index.meters.items()}
    scope = set(pending)
    for kept in names.values():
        if any(gives[name] != then for name, then in kept.items()):
            scope.update(owner[k] for k in (*kept.values(), *map(gives.get, kept)) if k in owner)
    sharing: dict[str, set[str]] = {}
    for loc in index.site.locations:
        for name in (loc.id, *(m.key for m in loc.meters), *(m.serial for m in loc.meters)):
            sharing.setdefault(name, set()).add(loc.id)
    groups = [ids for ids in sharing.values() if len(ids) > 1]
    grown = True
    while grown:
        grown = False
        for ids in groups:
            if ids & scope and not ids <= scope:
                scope |= ids
                grown = True
    return frozenset(scope)


def _rebuild_scope(
    store: Store, index: SiteIndex, batches: Sequence[BatchInfo], pending: Collection[str] | None
) -> tuple[frozenset[str] | None, dict[int, dict[str, str]], dict[str, str]]:
    """The locations a rebuild of the locations ``pending`` covers (:func:`_widened`; ``None``:
    every location), with the names the batches' readers looked meters up by and what each of
    them gives now. A telegram or MQTT capture archived before its names were kept makes it
    every location: where its messages went cannot be told without them."""
    if pending is None:
        return None, {}, {}
    names = store.batch_names(index.site.site.id)
    if any(b.format in _NAMED_FORMATS and b.batch not in names for b in batches):
        return None, names, {}
    gives = {n: index.meter_named(n) for kept in names.values() for n in kept}
    return _widened(index, frozenset(pending), names, gives), names, gives


def _replay(
    store: Store,
    site_id: str,
    index: SiteIndex,
    batches: Sequence[BatchInfo],
    keep_locations: Collection[str],
    progress: Progress | None,
    stored: Callable[[BatchInfo, ImportedFile], int],
    left: Callable[[BatchInfo], bool] | None = None,
    stored_as: str | None = None,
) -> tuple[int, int]:
    """Parse the archived ``batches`` again in import order (those ``left`` says are left
    unread are skipped; the rows of ``keep_locations`` are not read) and give each to
    ``stored``, which stores it and returns its profile slots (readers that join a batch with
    stored series read those stored under ``stored_as``, if given). Every batch is parsed even
    after one is refused, so that all problems are listed; none is stored after the first.
    Returns the slots stored and the batches read; raises :class:`InvalidInput` with every
    problem when any batch was refused."""
    slots = read = 0
    problems: list[Problem] = []
    for i, info in enumerate(batches):
        if progress is not None:
            progress(f"batch {info.batch} ({info.source})", i, len(batches))
        if left is not None and left(info):
            continue  # the same rows for the same locations as before: none rebuilt
        read += 1
        head = f"batch {info.batch} ({info.source}, "

        def reading(done: int, total: int, head: str = head, i: int = i) -> None:
            if progress is not None:
                progress(f"{head}{_mb(done)} of {_mb(total)})", i, len(batches))

        try:
            # the rows of keep_locations are as they were (see _widened)
            file = _parse_archived(store, info, index, keep_locations, reading, stored_as)
        except InvalidInput as exc:
            problems.extend(
                replace(p, reason=f"archived batch {info.batch}: {p.reason}", severity="error")
                for p in exc.problems
            )
            continue
        if not problems:
            slots += stored(info, file)
    if problems:
        raise InvalidInput(
            f"site {site_id!r}: the current configuration refuses archived data; "
            "nothing was rebuilt",
            problems,
        )
    return slots, read


def _rebuild_whole(
    store: Store,
    site: Site,
    when: datetime,
    progress: Progress | None,
    *,
    version: int,
    before_swap: Callable[[], None] | None = None,
) -> RebuildResult:
    """Rebuild every location of a site: the batches are replayed into a stand-in site
    (:meth:`~lastgang.store.Store.begin_stand_in`), each batch committed when stored (small
    ones, a listener's, together up to :data:`COMMIT_READINGS` readings), so that the store
    never holds more than about one batch's rows uncommitted (DuckDB keeps a transaction's
    rows in memory until it ends: 240 MB per month of 1,000 metering points). The site itself
    is untouched until the stand-in replaces it, in one transaction, with the changed values
    kept in the history table; a refused batch or any error drops the stand-in and leaves the
    site as it was. No other thread of the process uses the store meanwhile.

    ``site`` is the configuration replayed with; ``version`` the site's version the replay
    starts from: should another connection import data or apply a version meanwhile, the swap
    refuses. ``before_swap`` runs in the swap's transaction first (``site apply`` saves its
    version there, so that a version whose rebuild is refused is not applied either). Inside
    a transaction nothing is committed before it ends: the same outcome, without the bound on
    memory."""
    site_id = site.site.id
    index = SiteIndex(site)
    batches = store.batches(site_id)
    names: dict[int, Mapping[str, str]] = {}
    pieces: dict[int, Sequence[FilePiece]] = {}
    with store.exclusive():
        stand_in = store.begin_stand_in(site_id)
        twin = site.model_copy(update={"site": site.site.model_copy(update={"id": stand_in})})
        group = _Committed(store, COMMIT_READINGS)
        try:

            def stored(info: BatchInfo, file: ImportedFile) -> int:
                if file.names is not None:  # what its names give now, kept with the swap
                    names[info.batch] = file.names
                if file.pieces is not None:
                    pieces[info.batch] = file.pieces
                group.begin()
                slots = _store_batch(store, twin, info.batch, file, when, history=False)
                group.stored(len(file.readings))
                return slots

            slots, read = _replay(
                store, site_id, index, batches, (), progress, stored, stored_as=stand_in
            )
            group.commit()
            if progress is not None:
                progress("the rebuilt rows replace the site's", len(batches), len(batches))
            with store.transaction():
                # another connection (a second process cannot open the store) may have written
                # meanwhile: the replay would lose a batch imported, or a version applied
                now_batches = [b.batch for b in store.batches(site_id)]
                if (
                    now_batches != [b.batch for b in batches]
                    or store.site_version(site_id).version != version
                ):
                    again = "nothing was applied: apply the version again"
                    if before_swap is None:
                        again = "nothing was rebuilt: rebuild it again"
                    raise StoreError(
                        f"site {site_id!r} changed while it was rebuilt (data imported or a "
                        f"version applied through another connection); {again}"
                    )
                if before_swap is not None:
                    before_swap()
                for batch, named in names.items():
                    store.save_batch_names(batch, named)
                for batch, parts in pieces.items():
                    store.save_batch_pieces(batch, parts)
                changed = store.replace_by_stand_in(site_id, stand_in, when)
            if progress is not None:
                progress("done", len(batches), len(batches))
        except BaseException:
            group.abort()
            # a store error may have ended the transaction: what is left of the stand-in
            # then goes with the next rebuild of the site (begin_stand_in)
            with contextlib.suppress(Exception):
                store.drop_stand_in(stand_in)
            raise
    return RebuildResult(site_id, len(batches), slots, changed, None, read)


#: readings of a whole rebuild's batches stored in one transaction at most, unless one batch
#: holds more (:func:`_rebuild_whole`): about 80 MB of what DuckDB holds until a commit, and a
#: commit (some milliseconds) for many batches of a listener, not one each
COMMIT_READINGS = 1 << 20


class _Committed:
    """The open transaction of a replay's batches, committed once they hold ``readings``
    readings or more."""

    def __init__(self, store: Store, readings: int) -> None:
        self.store = store
        self.readings = readings
        self.held = 0
        self.open: contextlib.ExitStack | None = None

    def begin(self) -> None:
        """Open a transaction for the next batch, unless one is open."""
        if self.open is None:
            opened = contextlib.ExitStack()
            opened.enter_context(self.store.transaction())
            self.open = opened

    def stored(self, readings: int) -> None:
        """A batch of ``readings`` readings was stored: commit once there are enough."""
        self.held += readings
        if self.held >= self.readings:
            self.commit()

    def commit(self) -> None:
        if self.open is not None:
            opened, self.open, self.held = self.open, None, 0
            opened.close()

    def abort(self) -> None:
        """Roll the open transaction back (inside the handler of the error that stops)."""
        if self.open is not None:
            opened, self.open, self.held = self.open, None, 0
            opened.__exit__(*sys.exc_info())


class _Unread:
    """Which archived batches a partial rebuild of the locations ``rebuilt``
    (:func:`_widened`) leaves unread: never one that held readings of them (``held``,
    :meth:`~lastgang.store.Store.begin_rebuild`); of the others, one whose kept names give the
    meters they gave, none of them a meter rebuilt (its messages go to the same meters of
    other locations, whose facts are unchanged), and one of :data:`_PLACES_EVERY_ROW`."""

    def __init__(
        self,
        site: Site,
        names: Mapping[int, Mapping[str, str]],
        gives: Mapping[str, str],
        rebuilt: Collection[str],
        held: Collection[int],
    ) -> None:
        self.names = names
        self.gives = gives
        self.held = held
        self.meters = {m.key for loc in site.locations if loc.id in rebuilt for m in loc.meters}

    def left(self, batch: BatchInfo) -> bool:
        if batch.batch in self.held:
            return False
        names = self.names.get(batch.batch)
        if names is None:
            return batch.format in _PLACES_EVERY_ROW
        return all(
            self.gives[name] == meter and meter not in self.meters for name, meter in names.items()
        )


def locations_listed(locations: Collection[str] | None) -> str | list[str]:
    """Locations as the CLI's and the API's JSON give them: ``"all"`` for ``None`` (every
    location of the site), else their ids in order."""
    return "all" if locations is None else sorted(locations)


@dataclass(frozen=True)
class RebuildResult:
    """What :func:`rebuild_profiles` did."""

    site_id: str
    batches: int
    slots: int
    #: stored values that changed (and went to the history table)
    changed: int
    #: the locations rebuilt (``None``: every location of the site)
    locations: tuple[str, ...] | None = None
    #: the archived batches read again (all of them, unless only some locations were rebuilt)
    read: int = 0


def rebuild_profiles(
    store: Store,
    site_id: str,
    *,
    now: datetime | None = None,
    progress: Progress | None = None,
    pending: bool = False,
) -> RebuildResult:
    """Rebuild every reading and profile of a site from its raw archive with the current site
    configuration: the archived batches are parsed again and replayed in import order, exactly
    as they were imported. Values that come out different go to the history table. A batch
    the current configuration refuses refuses the whole rebuild: nothing changes. The whole
    site is rebuilt batch by batch into a stand-in that replaces it at the end
    (:func:`_rebuild_whole`), a part of it in one transaction.

    With ``pending``, only the locations whose readings a configuration applied since the last
    rebuild reads otherwise are rebuilt (:meth:`~lastgang.store.Store.rebuild_pending`), with
    those whose rows may move to or from them (:func:`_widened`): only their readings are
    stored again and only their profiles built; the others are already what the replay would
    make of them. Batches that can give none of their rows are left unread (:class:`_Unread`);
    a telegram or MQTT capture archived before its names were kept makes the rebuild whole.
    The outcome is the same as rebuilding the whole site."""
    current = store.site_version(site_id)
    site = current.site
    index = SiteIndex(site)
    when = now or _now()
    batches = store.batches(site_id)
    scope, names, gives = _rebuild_scope(
        store, index, batches, store.rebuild_pending(site_id) if pending else None
    )
    if scope is None:
        return _rebuild_whole(store, site, when, progress, version=current.version)
    keep_locations: set[str] = set()
    keep_meters: set[str] = set()
    for loc in site.locations:
        if loc.id not in scope:
            keep_locations.update((loc.id, SERIES_LOCATION_PREFIX + loc.id))
            keep_meters.update(m.key for m in loc.meters)
    with store.transaction():
        held = store.begin_rebuild(site_id, keep_locations=keep_locations, keep_meters=keep_meters)
        unread = _Unread(site, names, gives, scope, held)

        def stored(info: BatchInfo, file: ImportedFile) -> int:
            if file.names is not None:  # what its names give now
                store.save_batch_names(info.batch, file.names)
            if file.pieces is not None:  # read whole: its pieces, for the next rebuild
                store.save_batch_pieces(info.batch, file.pieces)
            # only the readings of the locations rebuilt
            file = replace(file, readings=file.readings.without(keep_meters, keep_locations))
            if not len(file.readings):
                return 0
            return _store_batch(store, site, info.batch, file, when, history=False, only=scope)

        slots, read = _replay(
            store, site_id, index, batches, keep_locations, progress, stored, unread.left
        )
        changed = store.finish_rebuild(site_id, when)
    if progress is not None:
        progress("done", len(batches), len(batches))
    return RebuildResult(site_id, len(batches), slots, changed, tuple(sorted(scope)), read)


# ---------------------------------------------------------------------------------------------
# export


@dataclass(frozen=True, eq=False)
class ProfileTable:
    """A profile over local days at a resolution: one row per period (``end`` label)."""

    site_id: str
    location_id: str
    resolution: str
    end: list[str]
    import_kwh: NDArray[np.float64]
    export_kwh: NDArray[np.float64]
    quality: list[str]
    boundaries: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def to_csv(self) -> str:
        """``end,import_kwh,export_kwh,quality``; values unrounded (``repr`` of the float),
        empty when the period has a missing slot."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["end", "import_kwh", "export_kwh", "quality"])
        for end, imp, exp, q in zip(
            self.end, self.import_kwh.tolist(), self.export_kwh.tolist(), self.quality, strict=True
        ):
            writer.writerow([end, _number(imp), _number(exp), q])
        return buffer.getvalue()


def _number(value: float) -> str:
    return "" if value != value else repr(float(value))


#: locations a message about an unknown one names
_LOCATIONS_NAMED = 12


def resolve_target(site: Site, target: str) -> str:
    """A location id for a metering point ID (either form) or a location id of ``site``."""
    index = SiteIndex(site)
    found = index.resolve_location(target)
    if found is None:
        # a community's thousands of locations are not all named in one message
        ids = [loc.id for loc in site.locations]
        known = ", ".join(ids[:_LOCATIONS_NAMED])
        if len(ids) > _LOCATIONS_NAMED:
            known += f" and {len(ids) - _LOCATIONS_NAMED:,} more"
        raise InvalidInput(
            f"{target!r} is neither a metering point ID nor a location of site "
            f"{site.site.id!r} (locations: {known})",
            [Problem(f"unknown metering point or location {target!r}")],
        )
    return found


def export_profile(
    store: Store,
    site_id: str,
    target: str,
    first_day: date,
    last_day: date,
    resolution: str = "15min",
) -> ProfileTable:
    """The stored profile of a metering point (ID or location id) over the local days
    ``first_day`` .. ``last_day`` inclusive, summed to ``resolution`` (``15min``, ``30min``,
    ``1h``, ``day``, ``month``). A period's quality is the worst of its slots; a period with a
    missing slot is missing and has no values. Periods are labelled by their END (TOR-4.2)."""
    site = store.site_version(site_id).site
    location_id = resolve_target(site, target)
    tz = site.site.timezone
    res = parse_resolution(resolution)
    start, stop = period_slots(first_day, last_day, tz)
    profile = store.load_profiles(site_id, [location_id], start, stop)[location_id]
    boundaries, imports = aggregate(profile.import_kwh, start, res, tz)
    _, exports = aggregate(profile.export_kwh, start, res, tz)
    if len(profile):
        worst = np.maximum.reduceat(profile.quality, boundaries[:-1] - start)
    else:
        worst = np.zeros(0, dtype=np.int8)
    missing = worst == Quality.MISSING
    imports = np.where(missing, np.nan, imports)
    exports = np.where(missing, np.nan, exports)
    labels = end_labels(start, stop, tz)
    ends = [labels[int(b) - start - 1] for b in boundaries[1:]]
    return ProfileTable(
        site_id,
        location_id,
        res.name,
        ends,
        imports,
        exports,
        [Quality(int(q)).label for q in worst.tolist()],
        boundaries,
    )
