"""The JSON text of the run files (:mod:`lastgang.report.jsonfiles`): byte for byte what the
standard library writes for ``to_jsonable(value)`` with two spaces of indentation, also when the
long arrays are written a chunk at a time; floats read back as the same float."""

from __future__ import annotations

import io
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_to_jsonable import Colour, Inner, Kind  # the same folder
from test_to_jsonable import Outer as Base

from lastgang.billing.invoice import to_jsonable
from lastgang.report.jsonfiles import CHUNK, json_bytes, write_json, write_json_array


def reference(value: Any) -> bytes:
    """The oracle: the standard library's encoder over :func:`to_jsonable`."""
    return (json.dumps(to_jsonable(value), indent=2, ensure_ascii=False) + "\n").encode()


def streamed(value: Any, stream: tuple[str, ...]) -> bytes:
    out = io.BytesIO()
    write_json(out, value, stream=stream)
    return out.getvalue()


@dataclass(frozen=True)
class Outer(Base):
    """The records of the ``to_jsonable`` tests, and what else a run holds."""

    proxy: MappingProxyType[str, int] = field(default_factory=lambda: MappingProxyType({}))
    empty: tuple[int, ...] = ()
    nothing: dict[str, int] = field(default_factory=dict)
    texts: tuple[str, ...] = ()


def outer(items: int = 3) -> Outer:
    inner = Inner(Decimal("1.50"), Kind.LOCAL)
    return Outer(
        day=date(2025, 7, 20),
        at=datetime(2025, 7, 20, 8, 45, 1, 250, tzinfo=timezone(timedelta(hours=2))),
        inner=inner,
        items=tuple(Inner(Decimal(k).scaleb(-2), Kind.LOCAL) for k in range(items)),
        tags=frozenset({"b", "a", "c"}),
        counts=OrderedDict([(2, 0.5), (1, 0.1 + 0.2)]),
        colour=Colour.NUMBER,
        note=None,
        proxy=MappingProxyType({"L1": 35_036, "L2": 4}),
        texts=tuple(f"line {k}\nsecond line" for k in range(items)),
    )


def test_every_kind_of_value_is_written_as_the_standard_library_writes_it() -> None:
    value = outer()
    assert json_bytes(value) == reference(value)
    assert streamed(value, ()) == reference(value)
    assert streamed(value, ("items", "empty", "tags", "texts")) == reference(value)


def test_text_with_line_breaks_quotes_and_other_scripts_keeps_its_escapes() -> None:
    """Nested text is indented at its line breaks; a line break inside a string is written as
    ``\\n`` and so is never indented."""
    texts = ["a\nb", 'say "hi"', "back\\slash", "tab\there", "ctl\x01\x1f", "Grüße – €", "😀"]
    value = {"rows": [{"description": t, "lines": [t, t]} for t in texts], "after": texts}
    assert json_bytes(value) == reference(value)
    assert streamed(value, ("rows", "after")) == reference(value)
    assert json.loads(streamed(value, ("rows",))) == json.loads(reference(value))


@pytest.mark.parametrize("n", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 3])
def test_arrays_written_a_chunk_at_a_time_across_chunk_boundaries(n: int) -> None:
    value = outer(items=n)
    assert streamed(value, ("items",)) == reference(value)
    rows = [{"k": k, "text": f"row {k}"} for k in range(n)]
    for size in (1, 7, CHUNK):
        out = io.BytesIO()
        write_json_array(out, (rows[a : a + size] for a in range(0, n, size)))
        out.write(b"\n")
        assert out.getvalue() == reference(rows)


def test_empty_chunks_between_full_ones_leave_no_trace() -> None:
    out = io.BytesIO()
    write_json_array(out, [[], [1, 2], [], [], [3], []], depth=0)
    assert out.getvalue() == json.dumps([1, 2, 3], indent=2).encode()
    out = io.BytesIO()
    write_json_array(out, [[], []])
    assert out.getvalue() == b"[]"


def test_a_mapping_at_the_top_and_an_empty_one() -> None:
    value = {"a": [1, 2], "b": {"c": []}, 3: "three"}
    assert streamed(value, ("a",)) == reference(value)
    assert streamed({}, ()) == reference({}) == b"{}\n"
    assert streamed([1, 2], ()) == reference([1, 2])  # neither: written whole


def test_a_small_float_has_no_padded_exponent_and_reads_back_the_same() -> None:
    """The one difference to the standard library: ``2.5e-7``, not ``2.5e-07``."""
    for x in (2.5e-7, 1e-05, 1.0000000000000002e-6):
        assert json_bytes(x) != reference(x)
        assert json.loads(json_bytes(x)) == x
    for x in (0.1 + 0.2, 123456.789, -0.0, 1e16, 4.35e-4):
        assert json_bytes(x) == reference(x)


def test_what_to_jsonable_refuses_is_refused() -> None:
    for value in (np.int64(3), object(), {"x": [b"bytes"]}):
        with pytest.raises(TypeError, match=r"cannot turn .* into JSON"):
            to_jsonable(value)
        with pytest.raises(TypeError, match=r"cannot turn .* into JSON"):
            json_bytes(value)
        with pytest.raises(TypeError, match=r"cannot turn .* into JSON"):
            streamed({"rows": [1, value]}, ("rows",))


def test_an_integer_beyond_64_bits_is_refused() -> None:
    """The other difference (a run's integers are counts, numbers and years)."""
    assert reference(2**70) == b"1180591620717411303424\n"
    with pytest.raises(TypeError, match="64-bit"):
        json_bytes(2**70)


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(min_value=1e-4, max_value=1e15, allow_nan=False)
    | st.text(max_size=12)
    | st.decimals(allow_nan=False, allow_infinity=False, places=3, max_value=10**9)
    | st.dates()
    | st.datetimes(timezones=st.just(UTC))
)
_trees = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _trees, max_size=6))
def test_any_tree_is_written_as_the_standard_library_writes_it(value: dict[str, Any]) -> None:
    stream = tuple(k for k, v in value.items() if isinstance(v, list | tuple))
    assert json_bytes(value) == reference(value)
    assert streamed(value, stream) == reference(value)


def _cut(text: bytes, spans: list[tuple[int, int]]) -> bytes:
    """``text`` without the byte ranges ``spans``, cut by hand."""
    kept, at = b"", 0
    for start, length in spans:
        kept += text[at:start]
        at = start + length
    return kept + text[at:]


@pytest.mark.parametrize("n", [0, 1, 2, CHUNK + 1])
def test_each_element_s_span_is_that_element_and_the_rest_an_empty_array(n: int) -> None:
    """The store keeps a run's invoices one by one by their spans in the run JSON: the text is
    the same with spans recorded, each span parses as its element, and the text without them
    is the value with an empty array."""
    value = outer(items=n)
    spans: dict[str, list[tuple[int, int]]] = {"items": []}
    out = io.BytesIO()
    out.write(b"leading bytes of the file ")  # spans count from the start of the file
    write_json(out, value, stream=("items", "rows"), spans=spans)
    text = out.getvalue()[len(b"leading bytes of the file ") :]
    assert text == reference(value)
    expected = json.loads(reference(value))
    assert len(spans["items"]) == n
    whole = out.getvalue()
    for k, (at, length) in enumerate(spans["items"]):
        piece = whole[at : at + length]
        assert piece.startswith(b",\n    " if k else b"\n    ")
        assert json.loads(piece.lstrip(b",")) == expected["items"][k]
    rest = _cut(whole, spans["items"])[len(b"leading bytes of the file ") :]
    assert json.loads(rest) == {**expected, "items": []}


@settings(max_examples=100, deadline=None)
@given(st.lists(_trees, max_size=8), st.integers(min_value=0, max_value=3))
def test_spans_of_any_elements_at_any_depth(elements: list[Any], depth: int) -> None:
    out = io.BytesIO()
    spans: list[tuple[int, int]] = []
    write_json_array(out, [elements[:3], elements[3:]], depth, spans)
    plain = io.BytesIO()
    write_json_array(plain, [elements], depth)
    assert out.getvalue() == plain.getvalue()
    text = out.getvalue()
    assert [json.loads(text[a : a + n].lstrip(b",")) for a, n in spans] == json.loads(
        reference(elements)
    )
    assert json.loads(_cut(text, spans)) == []
