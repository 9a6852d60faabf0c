"""How secrets are kept out of what people read: a stream scrubbed as it comes, whatever
its pieces, and every secret routes.yaml holds counted as one."""

from __future__ import annotations

from pathlib import Path

import yaml

from modelmux.addons.streams import Pipe
from modelmux.config import loader
from modelmux.config.types import Credential
from modelmux.secrets import Scrubbing, StreamScrubber, configured, scrub_bytes

KEY = Credential("main", "sk-main-key-abcdefghijkl-1234")
SHORT = Credential("short", "sk-abcd-99")  # a prefix of no other, shorter than KEY
TEXT = f'data: {{"text": "you sent {KEY.key} and {SHORT.key}; {KEY.key}."}}\n\n'.encode()
CLEAN = TEXT.replace(KEY.key.encode(), "main…1234".encode()).replace(SHORT.key.encode(), "short…d-99".encode())


def scrubbed(pieces: list[bytes]) -> list[bytes]:
    scrubber = StreamScrubber(Scrubbing([SHORT, KEY]))
    return [out for piece in pieces for out in scrubber.feed(piece)] + scrubber.close()


def test_a_secret_cut_between_any_two_pieces_is_scrubbed():
    for size in (1, 2, 3, 5, 7, 13, len(TEXT)):
        pieces = [TEXT[i:i + size] for i in range(0, len(TEXT), size)]
        assert b"".join(scrubbed(pieces)) == CLEAN, size
    for cut in range(len(TEXT)):
        assert b"".join(scrubbed([TEXT[:cut], TEXT[cut:]])) == CLEAN, cut


def test_pieces_that_end_in_a_blank_line_pass_on_as_they_come():
    events = [b"event: ping\ndata: {}\n\n", TEXT, b"event: message_stop\ndata: {}\n\n"]
    assert scrubbed(events) == [events[0], CLEAN, events[2]]


def test_an_end_that_only_looks_like_a_secrets_start_is_given_back_at_the_close():
    scrubber = StreamScrubber(Scrubbing([KEY]))
    assert scrubber.feed(b"ends with sk-ma") == [b"ends with "]
    assert scrubber.close() == [b"sk-ma"]


def test_a_scrubbing_finds_and_replaces_what_scrub_bytes_does():
    inner = Credential("inner", KEY.key[:20])  # inside KEY: KEY goes first, whole
    tiny = Credential("tiny", "sk-1")  # shorter than anything scrubbed
    scrubbing = Scrubbing([tiny, inner, SHORT, KEY, Credential("again", KEY.key)])
    assert scrubbing.credentials() == [KEY, inner, SHORT]
    for data in (TEXT, TEXT + KEY.key[:20].encode(), b"nothing here", b"sk-1 " + SHORT.key.encode()):
        assert scrubbing.found_in(data) == (scrub_bytes(data, [KEY, inner, SHORT]) != data)
        assert scrubbing.bytes(data) == scrub_bytes(data, [KEY, inner, SHORT, tiny])
    assert scrubbing.bytes(TEXT) == CLEAN
    assert not Scrubbing([tiny]) and not Scrubbing([]).found_in(TEXT)


def test_a_pipe_scrubs_what_its_transform_gives():
    class Upper:
        def feed(self, chunk: bytes) -> list[bytes]:
            return [chunk.upper()]

        def close(self) -> list[bytes]:
            return [b"!"]

    pipe = Pipe(Upper())
    pipe.scrubber = StreamScrubber(Scrubbing([Credential("upper", KEY.key.upper())]))
    assert pipe(KEY.key[:10].encode()) == []  # it could begin the (upper-cased) key: held
    assert pipe(KEY.key[10:].encode()) == ["upper…1234".encode()]
    assert pipe(b"") == [b"!"]
    assert pipe.changes and pipe.ended
    passing = Pipe.of(True)  # True: mitmproxy's bytes as they come
    passing.scrubber = StreamScrubber(Scrubbing([KEY]))
    assert (passing(TEXT), passing(b""), passing.changes) == ([TEXT.replace(KEY.key.encode(), "main…1234".encode())], [], False)


def test_a_pipe_scrubs_a_secret_cut_between_two_pieces_one_chunk_gave():
    class Split:
        def feed(self, chunk: bytes) -> list[bytes]:
            return [chunk[:len(chunk) // 2], chunk[len(chunk) // 2:]]

        def close(self) -> list[bytes]:
            return []

    for cut in range(1, len(TEXT)):
        pipe = Pipe(Split())
        pipe.scrubber = StreamScrubber(Scrubbing([SHORT, KEY]))
        assert b"".join(pipe(TEXT[:cut]) + pipe(TEXT[cut:]) + pipe(b"")) == CLEAN, cut


def test_every_secret_routes_yaml_holds_is_configured():
    text = """
server: {api_key: "${GATEWAY}"}
providers:
  zai:
    protocol: anthropic
    base_url: https://api.z.ai/api/anthropic
    credentials: [{label: main, key: "${KEY}"}]
    headers: {x-team: "${TEAM}"}
"""
    loaded = loader.parse(yaml.safe_load(text), Path("routes.yaml"),
                          {"GATEWAY": "mm-gateway-key-0001", "KEY": "sk-zai-key-0002", "TEAM": "team-token-0003"})
    assert [(c.label, c.key) for c in configured(loaded)] == [
        ("main", "sk-zai-key-0002"), ("zai.headers.x-team", "team-token-0003"), ("gateway key", "mm-gateway-key-0001")]
