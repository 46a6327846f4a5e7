"""Compression of evidence segments: Zstandard, from the standard library on Python 3.14
(``compression.zstd``) and from its backport, the same API, before. Imported on first use so
commands that never write evidence do not load it."""

from __future__ import annotations

from types import ModuleType
from typing import Final

CODEC: Final = "zstd"
# Level 3 on Falco JSON: faster than zlib's fastest level and compresses far better (figures:
# docs/performance.md).
LEVEL: Final = 3


class CodecError(ValueError):
    """Stored bytes that cannot be decompressed as recorded."""


def compress(data: bytes) -> bytes:
    return bytes(_zstd().compress(data, LEVEL))


def decompress(data: bytes, codec: str, size: int) -> bytes:
    """The ``size`` bytes that ``data`` holds; never more (a damaged header cannot make a
    small blob expand without bound)."""
    if codec == "none":
        return data
    if codec != CODEC:
        raise CodecError(f"unknown codec {codec!r}")
    zstd = _zstd()
    try:
        decompressor = zstd.ZstdDecompressor()
        out = decompressor.decompress(data, max_length=size + 1)
    except zstd.ZstdError as exc:
        raise CodecError(str(exc)) from None
    if len(out) != size or not decompressor.eof:
        raise CodecError(f"holds {len(out)}{'+' if len(out) > size else ''} bytes, not {size}")
    return bytes(out)


def _zstd() -> ModuleType:
    try:
        from compression import zstd  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        from backports import zstd  # type: ignore[no-redef,import-not-found,unused-ignore]
    return zstd  # type: ignore[no-any-return,unused-ignore]
