"""JSON text of a run's records, as the run files hold it.

The text is what ``json.dumps(to_jsonable(value), indent=2, ensure_ascii=False)`` writes
(:func:`lastgang.billing.invoice.to_jsonable`: dataclasses as objects of their fields,
``Decimal`` as its exact string, dates and datetimes in ISO form, enums as their values, tuples
as arrays), made by orjson instead: the standard library's encoder is written in Python
wherever it indents. It turned a month's run of 10,000 consumers (1.1 million invoice lines)
into 1.2 GB of text in 71 s, every line held as a dict and as text on the way; orjson makes the
same text in C from the records themselves.

Two differences, neither of which a run meets or a reader notices:

- a float's shortest round-trip digits are written without a padded exponent (``2.5e-7`` where
  Python writes ``2.5e-07``); both read back as the same float. Only the unrounded
  ``energy_kwh`` of an energy line is a float in a run;
- an integer beyond 64 bits is refused (``TypeError``), as are the values ``to_jsonable``
  refuses.

:func:`write_json` writes the text piece by piece: the long arrays (a run's invoices, the lines of
all invoices) a few hundred elements at a time, so that the whole text is never in memory. It can
also note where each element of an array stands in the file (``spans``): the store keeps each
invoice of a run JSON on its own by them (:mod:`lastgang.store.runs`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, BinaryIO

import orjson

__all__ = ["json_bytes", "write_json", "write_json_array"]

_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
_INDENT = b"  "
#: array elements serialised together by :func:`write_json_array`
CHUNK = 256


def _default(value: Any) -> Any:
    """What orjson does not know itself, as :func:`~lastgang.billing.invoice.to_jsonable` has
    it."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    raise TypeError(f"cannot turn {type(value).__name__} into JSON")


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:  # with the reason :func:`_default` gave, if it did
        raise TypeError(str(exc.__cause__ or exc)) from None


def json_bytes(value: Any) -> bytes:
    """``value`` as the JSON text of a run file: indented by two spaces, UTF-8, a newline at
    the end. ``TypeError`` for a value it cannot write."""
    return _dumps(value) + b"\n"


def _nested(value: Any, depth: int) -> bytes:
    """``value``'s text indented as it appears ``depth`` levels down (JSON text holds no raw
    line break inside a string, so every line break is one of the indentation's)."""
    text = _dumps(value)
    return text.replace(b"\n", b"\n" + _INDENT * depth) if depth else text


def write_json_array(
    out: BinaryIO,
    chunks: Iterable[Sequence[Any]],
    depth: int = 0,
    spans: list[tuple[int, int]] | None = None,
) -> None:
    """A JSON array of the elements of ``chunks`` (sequences, written one after the other) as
    it appears ``depth`` levels down, without its trailing newline: the same text as the whole
    list's, one chunk in memory at a time.

    With ``spans``, each element is written on its own and its span in ``out`` is appended:
    ``(offset, length)`` of its text with the separator before it (the line break and
    indentation, and the comma for every element but the first). Cutting every span out leaves
    ``[`` and the closing line: an empty array. A span parses as the element on its own, once a
    leading comma is dropped."""
    written = False
    for chunk in chunks:
        if not chunk:
            continue
        if spans is not None:
            lead = b"\n" + _INDENT * (depth + 1)
            for element in chunk:
                if not written:
                    out.write(b"[")
                at = out.tell()
                piece = (b"," if written else b"") + lead + _nested(element, depth + 1)
                out.write(piece)
                spans.append((at, len(piece)))
                written = True
            continue
        # b"[\n  a,\n  b\n]" -> b"\n  a,\n  b": the elements with their line breaks
        body = _nested(list(chunk), depth)[1 : -(2 + len(_INDENT) * depth)]
        out.write(b"," + body if written else b"[" + body)
        written = True
    out.write(b"\n" + _INDENT * depth + b"]" if written else b"[]")


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    return (values[k : k + size] for k in range(0, len(values), size))


def write_json(
    out: BinaryIO,
    value: Any,
    *,
    stream: Iterable[str] = (),
    spans: Mapping[str, list[tuple[int, int]]] | None = None,
) -> None:
    """:func:`json_bytes` of ``value`` (a dataclass or a mapping) into ``out``, its fields named
    in ``stream`` (arrays) a chunk of elements at a time. ``spans`` maps a streamed field to
    the list that receives its elements' spans in ``out`` (:func:`write_json_array`)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        items: list[tuple[str, Any]] = [
            (f.name, getattr(value, f.name)) for f in dataclasses.fields(value)
        ]
    elif isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    else:
        out.write(json_bytes(value))
        return
    streamed = set(stream)
    if not items:
        out.write(b"{}\n")
        return
    for k, (name, item) in enumerate(items):
        out.write((b"{\n" if k == 0 else b",\n") + _INDENT + orjson.dumps(name) + b": ")
        if name in streamed and isinstance(item, list | tuple):
            write_json_array(out, _chunks(item), 1, None if spans is None else spans.get(name))
        else:
            out.write(_nested(item, 1))
    out.write(b"\n}\n")
