"""modelmux.translate.token_estimate: exact values for the deterministic parts, structure, robustness, accuracy."""

from __future__ import annotations

import base64
import importlib.util
import random
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from modelmux.translate import media, token_estimate
from modelmux.translate.media import base64_image_dimensions, image_dimensions, image_tokens, pdf_page_count
from modelmux.translate.token_estimate import estimate_input_tokens, estimate_text_tokens, request_parts, text_features

# --- Tiny images, built byte by byte --------------------------------------------------------


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    pixels = zlib.compress(b"".join(b"\0" + b"\x80" * width for _ in range(height)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def gif(width: int, height: int) -> bytes:
    screen = struct.pack("<HHBBB", width, height, 0, 0, 0)
    image = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return b"GIF89a" + screen + image + b";"


def jpeg(width: int, height: int, sof: int = 0xC0, exif_size: int = 0) -> bytes:
    def segment(marker: int, data: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(data) + 2) + data

    app0 = segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0")
    exif = segment(0xE1, b"Exif\0\0" + b"\x11" * exif_size) if exif_size else b""
    tables = segment(0xDB, b"\0" + bytes(range(64)))
    frame = segment(sof, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
    scan = segment(0xDA, b"\x01\x01\x00\x00\x3f\x00") + b"\x12\x34"
    return b"\xff\xd8" + app0 + exif + b"\xff\xff" + tables + frame + scan + b"\xff\xd9"


def riff(chunk: bytes, data: bytes) -> bytes:
    body = b"WEBP" + chunk + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_lossy(width: int, height: int) -> bytes:
    return riff(b"VP8 ", b"\x50\x02\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\0" * 8)


def webp_lossless(width: int, height: int) -> bytes:
    return riff(b"VP8L", b"\x2f" + struct.pack("<I", (width - 1) | (height - 1) << 14) + b"\0" * 8)


def webp_extended(width: int, height: int) -> bytes:
    size = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return riff(b"VP8X", b"\x10\0\0\0" + size)


IMAGES = {
    "png": (png(37, 21), (37, 21)),
    "gif": (gif(300, 2), (300, 2)),
    "jpeg": (jpeg(640, 480), (640, 480)),
    "jpeg, progressive": (jpeg(1024, 77, sof=0xC2), (1024, 77)),
    "jpeg, large EXIF": (jpeg(4032, 3024, exif_size=20_000), (4032, 3024)),
    "webp, lossy": (webp_lossy(120, 90), (120, 90)),
    "webp, lossless": (webp_lossless(16383, 5), (16383, 5)),
    "webp, extended": (webp_extended(5000, 2000), (5000, 2000)),
}


@pytest.mark.parametrize("name", IMAGES)
def test_image_dimensions_from_each_format(name: str) -> None:
    data, size = IMAGES[name]
    assert image_dimensions(data) == size
    assert base64_image_dimensions(base64.b64encode(data).decode()) == size


def test_base64_header_is_read_without_decoding_the_image() -> None:
    data, _ = IMAGES["jpeg, large EXIF"]
    encoded = base64.b64encode(data).decode()
    # a broken tail would fail a full decode; only the groups holding the headers are read
    assert base64_image_dimensions(encoded[:-8] + "!!!!!!!!") == (4032, 3024)


def test_base64_with_line_breaks_or_data_url_prefix() -> None:
    data = png(64, 48)
    assert base64_image_dimensions(base64.encodebytes(data).decode()) == (64, 48)
    assert base64_image_dimensions("data:image/png;base64," + base64.b64encode(data).decode()) == (64, 48)


@pytest.mark.parametrize(
    "data",
    [b"", b"BM\x36\x00\x00\x00", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", jpeg(10, 10)[:40], b"RIFF\0\0\0\0WEBPVP8 ", b"GIF8"],
)
def test_unknown_or_truncated_images_have_no_dimensions(data: bytes) -> None:
    assert image_dimensions(data) is None
    assert base64_image_dimensions(base64.b64encode(data).decode()) is None


def test_garbage_base64_has_no_dimensions() -> None:
    assert base64_image_dimensions("not base64 at all \u00e9\u4e2d") is None


@pytest.mark.parametrize(
    "width, height, expected",
    [
        (200, 200, 54),  # Anthropic's vision docs: ~54
        (1000, 1000, 1334),  # ~1334
        (1092, 1092, 1590),  # ~1590
        (3000, 1500, 1600),  # scaled to 1568x784, then capped
        (1568, 100, 210),
        (1, 1, 1),
        (0, 10, 1600),  # nonsense: count as the maximum
    ],
)
def test_image_tokens(width: int, height: int, expected: int) -> None:
    assert image_tokens(width, height) == expected


def image_request(source: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"type": "image", "source": source}]}]}


def test_image_block_costs_its_measured_size() -> None:
    encoded = base64.b64encode(png(200, 200)).decode()
    measured = estimate_input_tokens(image_request({"type": "base64", "media_type": "image/png", "data": encoded}))
    by_url = estimate_input_tokens(image_request({"type": "url", "url": "https://example.com/cat.png"}))
    assert by_url - measured == media.IMAGE_MAX_TOKENS - 54


# --- PDFs -------------------------------------------------------------------------------------


def pdf(pages: int, compressed_pages: int = 0) -> bytes:
    objects = [
        b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj",
        b"2 0 obj << /Type /Pages /Count %d >> endobj" % (pages + compressed_pages),
    ]
    objects += [b"%d 0 obj << /Type/Page /Parent 2 0 R >> endobj" % (3 + n) for n in range(pages)]
    if compressed_pages:
        inner = b" ".join(b"<< /Type /Page /Parent 2 0 R >>" for _ in range(compressed_pages))
        stream = zlib.compress(inner)
        head = b"99 0 obj << /Type /ObjStm /N %d /First 0 /Filter /FlateDecode /Length %d >>" % (compressed_pages, len(stream))
        objects.append(head + b"\nstream\n" + stream + b"\nendstream endobj")
    return b"%PDF-1.7\n" + b"\n".join(objects) + b"\n%%EOF\n"


@pytest.mark.parametrize("pages, compressed, expected", [(1, 0, 1), (3, 0, 3), (0, 4, 4), (2, 5, 7), (700, 0, 600)])
def test_pdf_page_count(pages: int, compressed: int, expected: int) -> None:
    assert pdf_page_count(pdf(pages, compressed)) == expected


def test_not_a_pdf_has_no_page_count() -> None:
    assert pdf_page_count(b"hello") is None
    assert pdf_page_count(b"%PDF-1.4\n no pages here") is None


def document_request(source: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"type": "document", "source": source}]}]}


def test_pdf_document_costs_its_pages() -> None:
    def cost(data: bytes) -> int:
        source = {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(data).decode()}
        return estimate_input_tokens(document_request(source))

    assert cost(pdf(3)) - cost(pdf(1)) == 2 * media.PDF_PAGE_TOKENS
    unknown = estimate_input_tokens(document_request({"type": "url", "url": "https://example.com/a.pdf"}))
    assert unknown - cost(pdf(1)) == (media.PDF_UNKNOWN_PAGES - 1) * media.PDF_PAGE_TOKENS


def test_text_and_content_documents_count_their_text() -> None:
    text = "A plain text document with a few words in it. " * 20
    as_text = estimate_input_tokens(document_request({"type": "text", "media_type": "text/plain", "data": text}))
    as_content = estimate_input_tokens(document_request({"type": "content", "content": [{"type": "text", "text": text}]}))
    assert as_text == as_content - token_estimate.BLOCK_TOKENS
    assert as_text > estimate_text_tokens(text)


# --- Text heuristic -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, features",
    [
        # letters, digit runs, punctuation runs, line breaks, gaps, 8-letter pieces, 3-digit pieces,
        # 2-byte character runs, 2-byte, 3-byte and 4-byte characters
        ("Hello, world!", (2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0)),
        ("internationalization", (1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0)),
        ("12345678 and 3.14", (1, 3, 1, 0, 0, 0, 2, 0, 0, 0, 0)),
        ("if x:\n        return  y\n\n", (4, 0, 1, 2, 1, 0, 0, 0, 0, 0, 0)),
        ('{"a": [1, 2]}', (1, 2, 5, 0, 0, 0, 0, 0, 0, 0, 0)),
        ("caf\u00e9 \u041f\u0440\u0438\u0432\u0435\u0442", (1, 0, 0, 0, 0, 0, 0, 2, 7, 0, 0)),
        ("\U0001f600 \u4e2d\u6587\u3002", (0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 1)),
    ],
)
def test_text_features(text: str, features: tuple[int, ...]) -> None:
    assert text_features(text) == features


def test_text_estimates() -> None:
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("!") == 1
    assert estimate_text_tokens("The quick brown fox jumps over the lazy dog.") == 10
    assert estimate_text_tokens("lone surrogate \ud800 is fine") >= 4


def test_remembered_costs_do_not_change_results() -> None:
    text = "def f(x):\n    return x * 2\n" * 200  # long enough to be remembered
    token_estimate._MEMO.clear()
    cold = estimate_text_tokens(text)
    assert estimate_text_tokens(text) == cold
    token_estimate._MEMO.clear()
    assert estimate_text_tokens(text) == cold


# --- Request structure ----------------------------------------------------------------------------

BASE: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "Fix the failing test, please."}]}


def with_(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


def extra_message(*blocks: Any, role: str = "assistant") -> dict[str, Any]:
    return with_(messages=[*BASE["messages"], {"role": role, "content": list(blocks)}])


SCHEMA = {"type": "object", "properties": {"file_path": {"type": "string"}}}
TOOL = {"name": "Read", "description": "Reads a file.", "input_schema": SCHEMA}


@pytest.mark.parametrize(
    "name, request_body",
    [
        ("system string", with_(system="You are a careful coding agent.")),
        ("system blocks", with_(system=[{"type": "text", "text": "You are a careful coding agent."}])),
        ("tools", with_(tools=[TOOL])),
        ("server tool", with_(tools=[{"type": "web_search_20250305", "name": "web_search"}])),
        ("thinking", extra_message({"type": "thinking", "thinking": "The cache is stale.", "signature": "x"})),
        ("redacted thinking", extra_message({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"})),
        ("tool_use", extra_message({"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "/a.py"}})),
        ("tool_result", extra_message({"type": "tool_result", "tool_use_id": "t1", "content": "1\tprint('hi')"}, role="user")),
        ("tool_result blocks", extra_message({"type": "tool_result", "content": [{"type": "text", "text": "ok"}]}, role="user")),
        ("server tool result", extra_message({"type": "web_search_tool_result", "content": [{"url": "https://a.example"}]})),
        ("role system message", with_(messages=[{"role": "system", "content": "Answer in French."}, *BASE["messages"]])),
        ("unknown block", extra_message({"type": "from_the_future", "payload": {"x": 1}})),
    ],
)
def test_every_part_of_a_request_counts(name: str, request_body: dict[str, Any]) -> None:
    assert estimate_input_tokens(request_body) > estimate_input_tokens(BASE)


def test_tool_prompt_and_tool_choice() -> None:
    auto = estimate_input_tokens(with_(tools=[TOOL]))
    forced = estimate_input_tokens(with_(tools=[TOOL], tool_choice={"type": "tool", "name": "Read"}))
    assert auto - estimate_input_tokens(BASE) > token_estimate.TOOL_PROMPT_TOKENS["auto"]
    assert forced == auto - 346 + 313 + estimate_text_tokens("Read")


def test_tool_result_error_flag_counts() -> None:
    ok = extra_message({"type": "tool_result", "tool_use_id": "t1", "content": "boom"}, role="user")
    failed = extra_message({"type": "tool_result", "tool_use_id": "t1", "content": "boom", "is_error": True}, role="user")
    assert estimate_input_tokens(failed) == estimate_input_tokens(ok) + 2


def test_request_parts_keep_one_text_per_message() -> None:
    call = {"type": "tool_use", "id": "t", "name": "Grep", "input": {"pattern": "x"}}
    texts, fixed = request_parts(extra_message({"type": "text", "text": "Looking."}, call))
    assert texts == ["Fix the failing test, please.", 'Looking.\nGrep\n[{"pattern": "x"}]']
    assert fixed == (token_estimate.REQUEST_TOKENS + 2 * token_estimate.MESSAGE_TOKENS + 2 * token_estimate.BLOCK_TOKENS
                     + token_estimate.TOOL_CALL_TOKENS)


# --- Odd input ---------------------------------------------------------------------------------------


def deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


def cyclic() -> dict[str, Any]:
    loop: dict[str, Any] = {"type": "mystery"}
    loop["self"] = loop
    return loop


ODD: list[Any] = [
    {},
    None,
    [],
    "just a string",
    42,
    {"messages": "not a list"},
    {"messages": [None, 1, "bare string", ["list"], {"role": "user"}, {"content": {"type": "text", "text": "one block"}}]},
    {"system": 7, "tools": "nope", "tool_choice": ["weird"]},
    {"tools": [None, "x", {"type": ["odd"]}, {"name": 1, "input_schema": {1: 2, (1, 2): 3}}], "tool_choice": {"type": {"a": 1}}},
    {"messages": [{"content": [{"type": "image", "source": {"type": "base64", "data": 123}}, {"type": "image"}]}]},
    {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "%%%%"}}]}]},
    {"messages": [{"content": [{"type": "document", "source": None}]}]},
    {"messages": [{"content": [{"type": "document", "source": {"type": "base64", "data": "JVBERi0="}}]}]},
    {"messages": [{"role": "user", "content": [{"type": "tool_result", "content": deep(5000)}]}]},
    {"messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "x", "input": deep(5000)}]}]},
    {"messages": [{"role": "assistant", "content": [cyclic(), {"type": "tool_use", "input": {"n": 10**5000}}]}]},
    {"messages": [{"role": "user", "content": "\ud800\udfff lone surrogates \udc00"}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": None}, {"type": "text"}, {"type": None}]}]},
]


@pytest.mark.parametrize("body", ODD, ids=range(len(ODD)))
def test_odd_input_never_raises_and_is_never_zero(body: Any) -> None:
    assert estimate_input_tokens(body) >= 1


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", None, 3]
    choice = rng.randrange(9 if depth < 4 else 5)
    if choice == 0:
        return rng.choice(["", "x", "\u00e9\u4e2d", "a  b\n\tc", "%PDF", "iVBORw0KGgo="])
    if choice == 1:
        return rng.choice([None, True, 0, -1, 1.5, float("nan")])
    if choice == 2:
        return rng.choice(kinds)
    if choice in (3, 4):
        return {"type": "base64", "data": rng.choice(["", "/9j/4AAQ", "R0lGODlh", "UklGRg==", 5])}
    if choice in (5, 6):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["type", "text", "content", "source", "input", "data", "thinking", "name", "is_error", "messages", "system", "tools"]
    block = {rng.choice(keys): random_value(rng, depth + 1) for _ in range(rng.randrange(5))}
    if rng.random() < 0.6:
        block["type"] = rng.choice(kinds)
    return block


def test_random_structures_never_raise() -> None:
    rng = random.Random(20250614)
    for _ in range(2000):
        body = {key: random_value(rng) for key in rng.sample(["system", "messages", "tools", "tool_choice"], rng.randrange(5))}
        assert estimate_input_tokens(body) >= 1


# --- Accuracy against a real tokenizer ------------------------------------------------------------

PIECE_TOLERANCE = 0.12  # each separate piece of the bench corpus
REQUEST_TOLERANCE = 0.08  # the whole Claude-Code-like request


def load_bench() -> Any:
    path = Path(__file__).resolve().parents[1] / "bench" / "token_accuracy.py"
    spec = importlib.util.spec_from_file_location("token_accuracy", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_estimate_is_close_to_the_claude_tokenizer() -> None:
    bench = load_bench()
    reference = bench.load_reference()
    if reference is None:
        pytest.skip("reference tokenizer not installed (optional: the tokenizers package and anthropic 0.38's "
                    "tokenizer.json; how to install them: docs/development.md, 'The reference tokenizer test')")
    count, _ = reference
    rows = bench.comparisons(count)
    request_estimate, request_actual = rows[0][1], rows[0][2]
    assert abs(request_estimate / request_actual - 1) <= REQUEST_TOLERANCE
    for name, estimate, actual in rows[1:]:
        assert abs(estimate / actual - 1) <= PIECE_TOLERANCE, name
