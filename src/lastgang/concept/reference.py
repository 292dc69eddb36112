"""The configuration reference (``docs/configuration.md``), generated from the site schema.

Every TOML table and field of a site file comes from the pydantic models in
:mod:`lastgang.concept.model` and :mod:`lastgang.concept.tariffs`; this module writes them out
as Markdown (type, default, description), so the reference cannot drift from the code. A test
compares ``docs/configuration.md`` with :func:`configuration_reference`; after changing a model,
regenerate it with::

    .venv/bin/python -m lastgang.concept.reference --write docs/configuration.md
"""

from __future__ import annotations

import argparse
import inspect
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from lastgang.concept.model import Site

__all__ = ["configuration_reference", "main"]

_INTRO = """\
# Configuration reference

A site (a building or an energy community) is described in one TOML file. This reference lists
every table and field with its type, default and meaning. It is generated from the schema by
`python -m lastgang.concept.reference --write docs/configuration.md` and checked by the test
suite, so it always matches the code. For the ideas behind the fields (roles, inverted and
virtual meters, what `lastgang check` verifies) see [concepts.md](concepts.md); the shipped
examples in `examples/` show complete files.

Conventions:

- Dates are TOML dates (`2024-03-01`); a date as a point in time (meter installation) means
  00:00 legal time of the site. Date-times may carry an offset
  (`2025-04-10T09:30:00+02:00`); without one they are legal time of the site.
- Money and prices are decimals; write them as strings (`"0.1800"`) to keep every digit.
- A field marked *required* has no default. Unknown fields are errors (a typo never passes
  silently).
- `[[name]]` is an array of tables (one entry per `[[name]]` header); `[name]` a single table,
  which may also be written inline (`name = { a = 1, b = 2 }`).
"""

#: descriptions for fields whose model gives none (kept short, by field name)
_FALLBACK = {
    "id": "id of this entry, unique within its table",
    "name": "name shown on invoices and charts",
    "unit": "billing unit id",
    "customer": "who is billed, as printed on the invoice",
    "vat": "VAT rate as a fraction, e.g. 0.20",
    "valid_from": "first local day it applies (empty: always)",
    "valid_to": "last local day it applies, inclusive (empty: open)",
    "days": "weekdays: 'Mon-Fri', 'Sat,Sun' or a list such as ['Mon-Wed', 'Fri']",
    "from": "local start time HH:MM on the quarter hour (inclusive)",
    "to": "local end time HH:MM on the quarter hour (exclusive, '24:00' = midnight)",
    "start": "first day (move-in), billed in full",
    "end": "last day (move-out), billed in full; empty while it runs",
}


def _toml_name(name: str, info: FieldInfo) -> tuple[str, list[str]]:
    """The name written in TOML and other accepted spellings."""
    if isinstance(info.validation_alias, AliasChoices):
        names = [c for c in info.validation_alias.choices if isinstance(c, str)]
        if names:
            return names[0], names[1:]
    if isinstance(info.validation_alias, str):
        return info.validation_alias, []
    if info.alias:
        return info.alias, []
    return name, []


def _strip_none(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) != len(typing.get_args(annotation))
        if len(args) == 1:
            return args[0], optional
        return typing.Union[tuple(args)], optional  # noqa: UP007
    return annotation, False


def _model_in(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model type inside an annotation, and whether it is a list of them."""
    inner, _ = _strip_none(annotation)
    if typing.get_origin(inner) is list:
        (item,) = typing.get_args(inner) or (Any,)
        if inspect.isclass(item) and issubclass(item, BaseModel):
            return item, True
        return None, False
    if inspect.isclass(inner) and issubclass(inner, BaseModel):
        return inner, False
    return None, False


def _enum_in(annotation: Any) -> type[Enum] | None:
    inner, _ = _strip_none(annotation)
    return inner if inspect.isclass(inner) and issubclass(inner, Enum) else None


def _type_text(annotation: Any) -> str:
    inner, optional = _strip_none(annotation)
    text = _plain_type(inner)
    return f"{text} (optional)" if optional else text


def _plain_type(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _plain_type(typing.get_args(tp)[0])
    if origin is typing.Literal:
        return " \\| ".join(f'`"{v}"`' for v in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_plain_type(a) for a in typing.get_args(tp))
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return f"list of {_plain_type(item)}"
    if origin is dict:
        key, value = typing.get_args(tp)
        return f"table of {_plain_type(key)} to {_plain_type(value)}"
    if inspect.isclass(tp):
        if issubclass(tp, Enum):
            return " \\| ".join(f'`"{m.value}"`' for m in tp)
        if issubclass(tp, BaseModel):
            return "table"
        simple = {
            str: "string",
            int: "integer",
            float: "number",
            bool: "boolean",
            Decimal: "decimal",
            datetime: "date-time",
            date: "date",
        }
        if tp in simple:
            return simple[tp]
        return tp.__name__
    return str(tp)


def _default_text(info: FieldInfo) -> str:
    if info.default_factory is not None:
        try:
            value = info.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "(computed)"
        if isinstance(value, BaseModel):
            return "(defaults)"
        return _value_text(value)
    if info.default is PydanticUndefined:
        return "*required*"
    return _value_text(info.default)


def _value_text(value: Any) -> str:
    if value is None:
        return "(empty)"
    if isinstance(value, Enum):
        return f'`"{value.value}"`'
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`' if value else '`""`'
    if isinstance(value, list):
        if not value:
            return "`[]`"
        return "`[" + ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in value) + "]`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    if isinstance(value, BaseModel):
        return "(defaults)"
    return f"`{value}`"


def _escape(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _doc(model: type[BaseModel]) -> str:
    doc = inspect.getdoc(model) or ""
    return "\n".join(line.rstrip() for line in doc.splitlines()).strip()


def _sections(
    model: type[BaseModel], path: str, array: bool, out: list[str], seen: set[str]
) -> None:
    header = f"[[{path}]]" if array else f"[{path}]"
    out.append(f"## `{header}`\n")
    doc = _doc(model)
    if doc:
        out.append(doc + "\n")
    out.append("| field | type | default | description |")
    out.append("|---|---|---|---|")
    children: list[tuple[type[BaseModel], str, bool]] = []
    notes: list[str] = []
    for name, info in model.model_fields.items():
        toml, others = _toml_name(name, info)
        nested, is_list = _model_in(info.annotation)
        if nested is not None:
            child = f"{path}.{toml}"
            kind = "array of tables" if is_list else "table"
            link = f"[{kind}](#{_anchor(child, is_list)})"
            type_text = link + (" (optional)" if _strip_none(info.annotation)[1] else "")
            children.append((nested, child, is_list))
        else:
            type_text = _type_text(info.annotation)
        description = info.description or _FALLBACK.get(toml, "")
        enum = _enum_in(info.annotation)
        if enum is not None:
            enum_doc = inspect.getdoc(enum) or ""
            first, _, rest = enum_doc.partition("\n")
            if not description:
                description = first.rstrip(".")
            if rest.strip():
                notes.append(f"`{toml}`: {enum_doc.strip()}\n")
        if nested is not None and not description:
            description = (inspect.getdoc(nested) or "").partition("\n")[0].rstrip(".")
        if others:
            also = ", ".join(f"`{o}`" for o in others)
            description = f"{description} (also written {also})".strip()
        out.append(f"| `{toml}` | {type_text} | {_default_text(info)} | {_escape(description)} |")
    out.append("")
    out.extend(notes)
    for nested, child, is_list in children:
        key = f"{child}:{is_list}"
        if key not in seen:
            seen.add(key)
            _sections(nested, child, is_list, out, seen)


def _anchor(path: str, array: bool) -> str:
    """GitHub's anchor of a heading ``## `[[a.b]]` `` (punctuation dropped)."""
    text = f"[[{path}]]" if array else f"[{path}]"
    return "".join(c for c in text.lower() if c.isalnum() or c in "-_")


def configuration_reference() -> str:
    """The Markdown reference of every table and field of a site file."""
    out: list[str] = [_INTRO]
    out.append("## Tables\n")
    top: list[tuple[type[BaseModel], str, bool]] = []
    for name, info in Site.model_fields.items():
        toml, _ = _toml_name(name, info)
        nested, is_list = _model_in(info.annotation)
        if nested is None:  # pragma: no cover - every top-level field is a table
            continue
        top.append((nested, toml, is_list))
        header = f"[[{toml}]]" if is_list else f"[{toml}]"
        out.append(f"- [`{header}`](#{_anchor(toml, is_list)}): {_escape(info.description or '')}")
    out.append("")
    seen: set[str] = set()
    for nested, toml, is_list in top:
        _sections(nested, toml, is_list, out, seen)
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m lastgang.concept.reference [--write PATH]``: print or write the reference."""
    parser = argparse.ArgumentParser(description="Write the site configuration reference.")
    parser.add_argument("--write", metavar="PATH", help="write to PATH instead of printing")
    args = parser.parse_args(argv)
    text = configuration_reference()
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
