"""The relay's HTTP/1.1 client (modelmux/addons/sender.py) against local servers that
answer with scripted bytes: framing, keep-alive, early closes, timeouts, TLS."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from modelmux.addons.sender import Sender, tls_context
from test_failures import self_signed_tls, unresponsive_port  # noqa: F401 (a fixture)

Answer = Callable[[asyncio.StreamWriter], Awaitable[None]]


def raw(data: bytes, close: bool = False) -> Answer:
    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        if close:
            writer.close()

    return answer


def pieces(*parts: bytes | float, close: bool = False) -> Answer:
    """Writes each bytes part as it comes; a number is a pause in seconds."""

    async def answer(writer: asyncio.StreamWriter) -> None:
        for part in parts:
            if isinstance(part, float):
                await asyncio.sleep(part)
            else:
                writer.write(part)
                await writer.drain()
        if close:
            writer.close()

    return answer


class Server:
    """Reads each request (head and Content-Length body) and answers it with the next of
    `answers`; counts the connections it accepted."""

    def __init__(self, *answers: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[bytes, bytes]] = []  # head, body
        self.connections = 0
        self.tls = tls
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                self.requests.append((head, await reader.readexactly(length)))
                await self.answers.pop(0)(writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


JSON_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
STREAM_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def whole(body: bytes) -> Answer:
    return raw(JSON_HEAD % len(body) + body)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def post(sender: Sender, url: str, body: bytes = b'{"model":"m"}', read_timeout: float = 5,
               headers: list[tuple[str, str]] | None = None):
    return await sender.post(url, headers or [("content-type", "application/json")], body, 2, read_timeout)


async def fetch(sender: Sender, url: str) -> bytes:
    """An answer's body, read whole, its connection given back."""
    response = await post(sender, url)
    try:
        return await response.aread()
    finally:
        response.close()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    """`scenario` on an event loop with eager tasks, as mitmproxy runs one (its master
    sets the factory): asyncio's happy eyeballs failed there and nowhere else."""

    async def eagerly() -> None:
        asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)
        await asyncio.wait_for(scenario(), 20)

    asyncio.run(eagerly())


def test_a_content_length_answer_and_the_connection_kept_for_the_next():
    async def scenario() -> None:
        async with Server(whole(b'{"a":1}'), whole(b'{"b":2}')) as server:
            sender = Sender()
            first = await post(sender, f"{server.url}/v1/messages?beta=true", b"x" * 100_000)
            assert (first.status_code, first.reason_phrase, first.headers["content-type"]) == (200, "OK", "application/json")
            assert await first.aread() == b'{"a":1}'
            first.close()
            second = await post(sender, f"{server.url}/v1/messages")
            assert await second.aread() == b'{"b":2}'
            second.close()
            sender.close()
            head, body = server.requests[0]
            assert head.startswith(b"POST /v1/messages?beta=true HTTP/1.1\r\n")
            assert f"host: 127.0.0.1:{server.url.rsplit(':', 1)[1]}".encode() in head
            assert b"content-length: 100000" in head and body == b"x" * 100_000
            assert server.connections == 1

    run(scenario)


def test_a_chunked_answer_comes_as_it_is_read():
    async def scenario() -> None:
        async with Server(pieces(STREAM_HEAD, chunk(b"event: a\n\n"), 0.2, chunk(b"event: b\n\n") + b"0\r\n\r\n")) as server:
            sender = Sender()
            response = await post(sender, server.url + "/v1/messages")
            got = [data async for data in response.aiter_raw()]
            response.close()
            assert got == [b"event: a\n\n", b"event: b\n\n"]
            assert response.headers["content-type"] == "text/event-stream"
            sender.close()

    run(scenario)


def test_repeated_headers_are_joined_by_name_and_kept_as_they_came():
    async def scenario() -> None:
        head = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 2\r\n\r\n{}"
        async with Server(raw(head)) as server:
            sender = Sender()
            response = await post(sender, server.url)
            assert response.status_code == 429 and response.reason_phrase == "Too Many Requests"
            assert response.headers == {"retry-after": "3", "x-a": "1, 2", "content-length": "2"}
            assert response.fields == [("retry-after", "3"), ("x-a", "1"), ("x-a", "2"), ("content-length", "2")]
            response.close()
            sender.close()

    run(scenario)


def test_a_gzip_answer_is_decoded_when_read_whole():
    async def scenario() -> None:
        body = gzip.compress(b'{"ok":true}')
        head = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n" % len(body)
        async with Server(raw(head + body)) as server:
            sender = Sender()
            response = await post(sender, server.url)
            assert await response.aread() == b'{"ok":true}'
            response.close()
            sender.close()

    run(scenario)


@pytest.mark.parametrize("first, read, connections", [
    (whole(b"{}"), True, 1),
    (raw(STREAM_HEAD + chunk(b"event: a\n\n")), False, 2),  # closed before its stream ended
    (raw(JSON_HEAD % 2 + b"{}", close=True), True, 2),  # the upstream closes after it
])
def test_a_connection_is_kept_only_after_an_answer_read_to_its_end(first, read, connections):
    async def scenario() -> None:
        async with Server(first, whole(b"{}")) as server:
            sender = Sender()
            response = await post(sender, server.url)
            if read:
                await response.aread()
            response.close()
            await asyncio.sleep(0.05)  # an upstream's FIN arrives
            assert await fetch(sender, server.url) == b"{}"
            sender.close()
            assert server.connections == connections

    run(scenario)


def test_a_connection_closed_before_any_answer():
    async def scenario() -> None:
        async with Server(raw(b"", close=True)) as server:
            with pytest.raises(httpx.RemoteProtocolError, match="server closed connection"):
                await post(Sender(), server.url)

    run(scenario)


def test_a_stream_that_breaks_off_raises_as_httpx_did():
    async def scenario() -> None:
        async with Server(raw(STREAM_HEAD + chunk(b"event: a\n\n"), close=True)) as server:
            response = await post(Sender(), server.url)
            got = []
            with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
                async for data in response.aiter_raw():
                    got.append(data)
            assert got == [b"event: a\n\n"]
            response.close()

    run(scenario)


def test_a_content_length_body_cut_short():
    async def scenario() -> None:
        async with Server(raw(JSON_HEAD % 100 + b'{"a"', close=True)) as server:
            response = await post(Sender(), server.url)
            with pytest.raises(httpx.RemoteProtocolError):
                await response.aread()
            response.close()

    run(scenario)


def test_silence_after_the_head_is_a_read_timeout():
    async def scenario() -> None:
        async with Server(pieces(STREAM_HEAD, 1.0)) as server:
            response = await post(Sender(), server.url, read_timeout=0.2)
            with pytest.raises(httpx.ReadTimeout):
                async for _ in response.aiter_raw():
                    pass
            response.close()

    run(scenario)


def test_a_port_nobody_listens_on_cannot_be_connected_to():
    async def scenario() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))  # bound, never listening
            port = taken.getsockname()[1]
            with pytest.raises(httpx.ConnectError, match="Connect call failed"):
                await post(Sender(), f"http://127.0.0.1:{port}/")

    run(scenario)


def test_a_connection_that_is_never_accepted_times_out(unresponsive_port):
    async def scenario() -> None:
        with pytest.raises(httpx.ConnectTimeout):
            await Sender().post(f"http://127.0.0.1:{unresponsive_port}/", [], b"", 0.3, 5)

    run(scenario)


def test_tls_is_verified(tmp_path: Path):
    tls = self_signed_tls(tmp_path)

    async def scenario() -> None:
        async with Server(whole(b'{"tls":1}'), tls=tls) as server:
            with pytest.raises(httpx.ConnectError, match="^Certificate verify failed: self-signed certificate$"):
                await post(Sender(), server.url)
            trusting = ssl.create_default_context(cafile=tmp_path / "cert.pem")
            sender = Sender(tls=trusting)
            response = await post(sender, server.url)
            assert await response.aread() == b'{"tls":1}'
            response.close()
            sender.close()

    run(scenario)


def test_tls_follows_mitmproxys_upstream_options(tmp_path: Path):
    """ssl_insecure, ssl_verify_upstream_trusted_ca: the relay's connections check what
    mitmproxy's own would (the Relay builds its context from them)."""
    tls = self_signed_tls(tmp_path)

    async def scenario() -> None:
        async with Server(whole(b'{"tls":1}'), whole(b'{"tls":1}'), tls=tls) as server:
            for context in (tls_context(insecure=True), tls_context(ca_file=str(tmp_path / "cert.pem"))):
                sender = Sender(tls=context)
                response = await post(sender, server.url)
                assert await response.aread() == b'{"tls":1}'
                response.close()
                sender.close()
            sender = Sender(tls=tls_context(insecure=True))
            sender.tls = tls_context()  # an option changed: the next connection checks again
            with pytest.raises(httpx.ConnectError, match="^Certificate verify failed: self-signed certificate$"):
                await post(sender, server.url)

    run(scenario)


def test_a_header_http_does_not_allow_is_refused_before_sending():
    async def scenario() -> None:
        async with Server(whole(b"{}")) as server:
            with pytest.raises(httpx.LocalProtocolError) as refused:
                await post(Sender(), server.url, headers=[("x-api-key", "sk-secret\r\nx-injected: 1")])
            assert server.requests == []
            assert "sk-secret" not in str(refused.value) and refused.value.__suppress_context__

    run(scenario)


def test_an_interim_answer_is_skipped():
    async def scenario() -> None:
        async with Server(raw(b"HTTP/1.1 100 Continue\r\n\r\n" + JSON_HEAD % 2 + b"{}")) as server:
            sender = Sender()
            response = await post(sender, server.url)
            assert response.status_code == 200 and await response.aread() == b"{}"
            response.close()
            sender.close()

    run(scenario)
