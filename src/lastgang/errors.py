"""One exception tree for the whole package.

Every error a user can cause derives from :class:`LastgangError`. Validation never stops at the
first problem: it collects :class:`Problem` records (with file, line, column, meter, time) and
raises them together, so a user sees everything to fix at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, with as much of its place as is known."""

    reason: str
    file: str | None = None
    line: int | None = None
    column: str | None = None
    meter: str | None = None
    time: str | None = None
    severity: Severity = "error"

    def where(self) -> str:
        """The place of the problem as ``file:line: column`` (parts that are known)."""
        parts: list[str] = []
        if self.file is not None:
            parts.append(self.file if self.line is None else f"{self.file}:{self.line}")
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.column is not None:
            parts.append(f"column {self.column}")
        if self.meter is not None:
            parts.append(f"meter {self.meter}")
        if self.time is not None:
            parts.append(f"at {self.time}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{self.reason}" if where else f"{prefix}{self.reason}"


class LastgangError(Exception):
    """Base class of every error lastgang raises on purpose."""

    #: process exit code the CLI uses for this kind of error
    exit_code: int = 1

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems: tuple[Problem, ...] = tuple(problems)

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        lines = [self.message, *(f"  {p}" for p in self.problems)]
        return "\n".join(lines)


class InvalidInput(LastgangError, ValueError):
    """Input that breaks a rule: a file, a value, a configuration. Carries all problems found."""

    @classmethod
    def from_problems(cls, message: str, problems: Iterable[Problem]) -> InvalidInput:
        return cls(message, tuple(problems))


class InvalidId(InvalidInput):
    """A metering point ID that breaks TOR-4.1."""


class InvalidObis(InvalidInput):
    """An OBIS code or meter code that cannot be parsed (TOR-4.3)."""


class InvalidTime(InvalidInput):
    """A timestamp without offset, off the quarter-hour grid where one is required, or unknown."""


class MeterDataError(LastgangError):
    """Meter data that cannot be right: a register running backwards, a second overflow in one
    reading period (TOR-5.0a), overlapping meters at one location."""


class ConceptError(InvalidInput):
    """A measurement concept (site configuration) with errors (see ``lastgang check``)."""


class StoreError(LastgangError):
    """The store refuses an operation (locked file, reused metering point ID, unknown site)."""

    exit_code = 2


@dataclass
class ProblemCollector:
    """Collects problems while validating; raise them together with :meth:`raise_if_any`."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, reason: str, **where: object) -> None:
        self.problems.append(Problem(reason, **where))  # type: ignore[arg-type]

    def extend(self, problems: Iterable[Problem]) -> None:
        self.problems.extend(problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def raise_if_any(self, message: str, error: type[InvalidInput] = InvalidInput) -> None:
        """Raise ``error`` carrying every collected error (warnings are kept along)."""
        if self.errors:
            raise error(f"{message} ({len(self.errors)} problem(s))", tuple(self.problems))
