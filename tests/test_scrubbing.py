"""Scrubbing: configured secrets by value, anything key-shaped by its shape."""

from __future__ import annotations

import base64

from modelmux.config.types import Credential
from modelmux.replay.scrubbing import Scrubber

OPENAI_KEY = "sk-proj-aaaaaaaaaaaaaaaaaaaa1111"
GOOGLE_KEY = "AIza" + "B" * 31 + "2222"  # AIza + 35 characters, as Google's are
scrubber = Scrubber([Credential("oai-main", OPENAI_KEY), Credential("short", "abc")])


def test_a_configured_key_becomes_its_label_and_last_four() -> None:
    assert scrubber.text(f'{{"echo": "Incorrect API key provided: {OPENAI_KEY}"}}') == (
        '{"echo": "Incorrect API key provided: oai-main…1111"}'
    )
    assert scrubber.text("abc is too short to be a key") == "abc is too short to be a key"


def test_key_shaped_strings_are_redacted_whoever_owns_them() -> None:
    cases = {
        "token sk-ant-api03-ZZZZZZZZZZZZZZZZZZ-abc end": "token sk-ant-REDACTED end",
        "sk-or-v1-0123456789abcdef0123": "sk-REDACTED",
        f"the key {GOOGLE_KEY}.": "the key AIzaREDACTED.",
        "xai-abcdefghijklmnopqrstu gsk_abcdefghijklmnopqrstu": "xai-REDACTED gsk_REDACTED",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig": "Authorization: Bearer REDACTED",
        "GET /v1beta/models/g:streamGenerateContent?alt=sse&key=secret123&x=1":
            "GET /v1beta/models/g:streamGenerateContent?alt=sse&key=REDACTED&x=1",
        "https://host/path?api_key=k1&access_token=t2": "https://host/path?api_key=REDACTED&access_token=REDACTED",
    }  # fmt: skip
    assert {text: scrubber.text(text) for text in cases} == cases


def test_ordinary_text_and_images_are_left_alone() -> None:
    image = base64.b64encode(b"\x00" * 7 + GOOGLE_KEY.encode() + b"\xff" * 9).decode()
    texts = [
        "a task-scheduler-abcdefghijklmnop runs", "Bearer of good news", "?keyboard=1", "desk-abcdefghijklmnopq",
        f'{{"data": "{image}"}}', "Bearer oai-main…1111",
    ]
    assert [scrubber.text(t) for t in texts] == texts


def test_scrubbing_twice_changes_nothing_more() -> None:
    text = f"{OPENAI_KEY} sk-ant-abcdefghijklmnopq Bearer abcdefghijk ?key=abc"
    once = scrubber.text(text)
    assert once == "oai-main…1111 sk-ant-REDACTED Bearer REDACTED ?key=REDACTED"
    assert scrubber.text(once) == once


def test_credential_headers_are_redacted_whatever_their_value() -> None:
    headers = [
        ("X-Api-Key", "a-short-one"), ("authorization", "Bearer opaque"), ("api-key", OPENAI_KEY),
        ("authorization", "Bearer client…5555"), ("x-goog-api-key", "whatever"), ("content-type", "application/json"),
    ]  # fmt: skip
    assert scrubber.headers(headers) == [
        ("X-Api-Key", "REDACTED"), ("authorization", "Bearer REDACTED"), ("api-key", "oai-main…1111"),
        ("authorization", "Bearer client…5555"), ("x-goog-api-key", "REDACTED"), ("content-type", "application/json"),
    ]  # fmt: skip


def test_a_tree_keeps_its_shape_and_types() -> None:
    tree = {
        "client_request": {"headers": [["x-api-key", "sk-ant-api03-qqqqqqqqqqqqqqqq"], ["accept", "*/*"]],
                           "body": OPENAI_KEY.encode(), "path": "/v1/messages?key=zz"},
        "attempts": [{"response_headers": [[b"www-authenticate", b"Bearer realm"]], "status": 401, "ms": 1.5}],
        "comment": None,
    }  # fmt: skip
    assert scrubber.tree(tree) == {
        "client_request": {"headers": [["x-api-key", "sk-ant-REDACTED"], ["accept", "*/*"]],
                           "body": "oai-main…1111".encode(), "path": "/v1/messages?key=REDACTED"},
        "attempts": [{"response_headers": [[b"www-authenticate", b"Bearer realm"]], "status": 401, "ms": 1.5}],
        "comment": None,
    }  # fmt: skip


def test_bytes_that_are_not_text_pass_through() -> None:
    data = b"\x89PNG\r\n\x1a\n\xff\xfe" + OPENAI_KEY.encode()
    assert scrubber.data(data) == b"\x89PNG\r\n\x1a\n\xff\xfe" + "oai-main…1111".encode()
