"""The store's compression: Zstandard now, zlib's deflate as stored before, both inflated
whole or only as far as a prefix."""

from __future__ import annotations

import os
import zlib

import pytest

from lastgang.store.compression import compress, inflate, inflate_prefix

TEXT = b"2024-06-15 10:15+02:00,AT0081000801000000000000000700011,0.5,0\n" * 500


@pytest.mark.parametrize("data", [b"", b"x", TEXT, os.urandom(5000)])
@pytest.mark.parametrize("packer", [compress, lambda d: zlib.compress(d, 1)], ids=["zstd", "zlib"])
def test_what_is_compressed_now_or_was_deflated_before_comes_back_whole_and_by_prefix(
    data: bytes, packer: object
) -> None:
    assert callable(packer)
    packed = packer(data)
    assert inflate(packed) == data
    for size in sorted({0, 1, 7, len(data) // 2, len(data) - 1, len(data), len(data) + 5}):
        assert inflate_prefix(packed, size) == data[: max(size, 0)], size


def test_text_is_compressed_with_zstandard() -> None:
    packed = compress(TEXT)
    assert packed[:4] == b"\x28\xb5\x2f\xfd"  # a Zstandard frame
    assert len(packed) * 10 < len(TEXT)
