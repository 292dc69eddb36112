"""Read a site configuration (measurement concept, Messkonzept) from its TOML file.

:func:`parse_site` turns TOML text into a :class:`~lastgang.concept.model.Site`. Every problem is
reported at once as a :class:`~lastgang.errors.ConceptError`: a TOML syntax error with its line,
and every field pydantic refuses with its path in the file as the column, written the way a user
finds it in the file (``locations[2].meters[0].ct.ratio``; indices count from 0 in the order the
``[[locations]]`` tables appear).
"""

from __future__ import annotations

import difflib
import re
import tomllib
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from lastgang.concept.model import Site
from lastgang.errors import ConceptError, Problem

__all__ = ["load_site", "parse_site", "toml_path"]

_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def toml_path(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a path into the TOML file: ``locations[2].meters[0].ct``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_site(text: str, source: str = "<site>") -> Site:
    """Parse the TOML text of a site configuration; ``source`` names it in problems.

    Raises :class:`~lastgang.errors.ConceptError` carrying every problem found."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.search(message)
        line = int(match[1]) if match else None
        reason = _TOML_POSITION.sub("", message).strip()
        where = f", column {match[2]}" if match else ""
        raise ConceptError(
            f"{source} is not valid TOML",
            [Problem(f"TOML syntax: {reason}{where}", file=source, line=line)],
        ) from None
    try:
        return Site.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(error, data, source) for error in exc.errors()]
        raise ConceptError(
            f"{source}: the site configuration has {len(problems)} problem(s)", problems
        ) from None


def load_site(path: str | Path) -> Site:
    """Read and parse a site configuration file (UTF-8 TOML)."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConceptError(
            f"site configuration {file} not found",
            [Problem("no such file: check the path", file=str(file))],
        ) from None
    except OSError as exc:
        raise ConceptError(
            f"cannot read site configuration {file}",
            [Problem(f"cannot read the file: {exc.strerror}", file=str(file))],
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConceptError(
            f"{file} is not UTF-8",
            [Problem("the file is not UTF-8 text; save it as UTF-8", file=str(file), line=line)],
        ) from None
    return parse_site(text, str(file))


def _problem(error: Any, data: Any, source: str) -> Problem:
    loc: tuple[int | str, ...] = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    message = str(error.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind == "extra_forbidden":
        allowed = _allowed_fields(loc[:-1])
        name = str(loc[-1]) if loc else ""
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        listing = f" (allowed here: {', '.join(allowed)})" if allowed else ""
        message = f"unknown field {name!r}{hint}{listing}"
    elif kind == "missing":
        message = "required field is missing"
    else:
        value = _value_at(data, loc)
        if value is not _NOTHING and not isinstance(value, dict | list):
            message = f"{value!r}: {message}"
    return Problem(message, file=source, column=toml_path(loc) or None, meter=_meter(data, loc))


_NOTHING = object()


def _value_at(data: Any, loc: Sequence[int | str]) -> Any:
    node = data
    for part in loc:
        in_list = isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node)
        in_table = isinstance(part, str) and isinstance(node, dict) and part in node
        if not (in_list or in_table):
            return _NOTHING
        node = node[part]
    return node


def _meter(data: Any, loc: Sequence[int | str]) -> str | None:
    """``manufacturer:serial`` when the location is inside a meter table."""
    for i in range(len(loc) - 1):
        if loc[i] == "meters" and isinstance(loc[i + 1], int) and loc[0] == "locations":
            meter = _value_at(data, loc[: i + 2])
            if isinstance(meter, dict) and "serial" in meter:
                return f"{meter.get('manufacturer', '?')}:{meter['serial']}"
    return None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``annotation`` (through ``list[...]``, ``X | None``, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_of(typing.get_args(annotation)[0])
    if origin in (list, tuple, typing.Union, types.UnionType) or origin is not None:
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def _allowed_fields(loc: Sequence[int | str]) -> list[str]:
    model: type[BaseModel] | None = Site
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = next(
            (
                f
                for name, f in model.model_fields.items()
                if part in (name, f.alias, f.validation_alias)
            ),
            None,
        )
        if field is None:
            return []
        model = _model_of(field.annotation)
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]
