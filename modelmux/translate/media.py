"""Image and PDF sizes from their bytes, for the token estimate. Pure, standard library only.

Only headers are read: an image's dimensions from the first bytes of its (base64) data,
a PDF's page count from its page objects, so a large attachment costs little.
"""

from __future__ import annotations

import binascii
import math
import re
import zlib
from collections.abc import Callable
from typing import Any

# --- Costs ----------------------------------------------------------------------
# Anthropic's vision docs: "tokens = (width px * height px)/750", after images whose long
# edge exceeds 1568 px or that would cost more than ~1,600 tokens are scaled down (1092x1092
# is ~1,590 tokens). Images we cannot measure (URL, file id, unknown format) count as that
# maximum: overestimating only makes Claude Code compact a little early.
IMAGE_PIXELS_PER_TOKEN = 750
IMAGE_MAX_EDGE = 1568
IMAGE_MAX_TOKENS = 1600
# Anthropic's PDF docs: each page costs its extracted text ("typically 1,500-3,000 tokens
# per page depending on content density") plus an image of the page, priced as above.
# Third-party count_tokens measurements give about 2,100-3,200 per text page and 1,600 per
# scanned page: 2,500 it is. A PDF we cannot look into (URL, file id, unparsable) counts as
# PDF_UNKNOWN_PAGES pages; more pages than the API accepts (600, on 1M-context models)
# count as that many.
PDF_PAGE_TOKENS = 2500
PDF_UNKNOWN_PAGES = 5
PDF_MAX_PAGES = 600


# --- Images -------------------------------------------------------------------------------


def image_tokens(width: int, height: int) -> int:
    """Anthropic's documented image cost: scale down to the maximum size, then pixels / 750."""
    if width <= 0 or height <= 0:
        return IMAGE_MAX_TOKENS
    scale = min(1.0, IMAGE_MAX_EDGE / max(width, height))
    pixels = (width * scale) * (height * scale)
    return max(1, min(IMAGE_MAX_TOKENS, math.ceil(pixels / IMAGE_PIXELS_PER_TOKEN)))


def image_block_tokens(source: Any) -> int:
    """Tokens of an image block's source; images we cannot measure count as the maximum."""
    if not isinstance(source, dict) or source.get("type") != "base64" or not isinstance(source.get("data"), str):
        return IMAGE_MAX_TOKENS
    size = base64_image_dimensions(source["data"])
    return image_tokens(*size) if size else IMAGE_MAX_TOKENS


def image_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, GIF or WebP file's header; None for anything else."""
    return _dimensions(lambda offset, size: data[offset : offset + size])


def base64_image_dimensions(data: str) -> tuple[int, int] | None:
    """image_dimensions of base64 data, decoding only the few groups the header needs."""
    if data.startswith("data:"):  # a data URL slipped through: keep its payload
        data = data.partition(",")[2]
    if any(space in data[:4096] for space in " \n\r\t"):  # MIME-style line breaks
        data = "".join(data.split())

    def read(offset: int, size: int) -> bytes:
        first = offset // 3  # each 4 base64 characters hold 3 bytes
        chunk = b64decode(data[first * 4 : -(-(offset + size) // 3) * 4])
        return chunk[offset - first * 3 : offset - first * 3 + size]

    return _dimensions(read)


def b64decode(data: str) -> bytes:
    try:
        return binascii.a2b_base64(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return b""


_Read = Callable[[int, int], bytes]  # (offset, size) -> at most size bytes of a file


def _dimensions(read: _Read) -> tuple[int, int] | None:
    head = read(0, 30)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp_dimensions(head)
    if head[:2] == b"\xff\xd8":
        return _jpeg_dimensions(read)
    return None


def _webp_dimensions(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":  # lossy: after the key frame's start code
        return int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and head[20:21] == b"\x2f":  # lossless: 14-bit width-1 and height-1
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) == 30:  # extended: 24-bit canvas width-1 and height-1
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


# Start-of-frame markers carry the size: SOF0-3, 5-7, 9-11, 13-15 (C4, C8, CC are others).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset(range(0xD0, 0xDA)) | {0x01}  # RSTn, SOI, EOI, TEM: no length


def _jpeg_dimensions(read: _Read) -> tuple[int, int] | None:
    offset = 2
    for _ in range(256):  # segments before the frame header: APPn (EXIF, ICC), DQT, DHT, ...
        marker = read(offset, 4)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        kind = marker[1]
        if kind == 0xFF:  # fill byte
            offset += 1
        elif kind in _JPEG_STANDALONE:
            offset += 2
        elif kind in _JPEG_SOF:
            frame = read(offset + 5, 4)  # after length (2) and precision (1): height, width
            return (int.from_bytes(frame[2:4], "big"), int.from_bytes(frame[0:2], "big")) if len(frame) == 4 else None
        elif kind == 0xDA or len(marker) < 4:  # scan data before any frame header
            return None
        else:
            offset += 2 + int.from_bytes(marker[2:4], "big")
    return None


# --- PDFs ---------------------------------------------------------------------------------
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
_PDF_OBJECT_STREAM = re.compile(rb"/Type\s*/ObjStm\b")
_PDF_STREAM_START = re.compile(rb"stream\r?\n")
_PDF_MAX_INFLATED = 16 << 20  # bytes of object streams inflated per PDF, at most


def pdf_page_count(data: bytes) -> int | None:
    """Pages of a PDF, counted as `/Type /Page` objects; None if it is not a PDF we can read.

    PDF 1.5+ may keep page objects in compressed object streams, so those are inflated
    too (bounded). No PDF parser: counting objects is enough for an estimate.
    """
    if not data.startswith(b"%PDF"):
        return None
    pages = len(_PDF_PAGE.findall(data))
    budget = _PDF_MAX_INFLATED
    for match in _PDF_OBJECT_STREAM.finditer(data):
        if budget <= 0 or pages >= PDF_MAX_PAGES:
            break
        stream = _PDF_STREAM_START.search(data, match.end(), match.end() + 1024)
        if stream is None:
            continue
        try:
            inflated = zlib.decompressobj().decompress(data[stream.end() : stream.end() + budget], budget)
        except zlib.error:  # another filter, or damaged
            continue
        budget -= len(inflated)
        pages += len(_PDF_PAGE.findall(inflated))
    return min(pages, PDF_MAX_PAGES) or None
