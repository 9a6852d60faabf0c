"""Sender: the relay's HTTP/1.1 client to upstreams, modelmux/attempt/http1.py on
asyncio streams, with idle connections kept per origin.

It took httpx's place on the relay's path (issue 19): an httpx request cost about
0.7 ms of CPU more (auth, redirects, cookies, anyio's layers), while the relay only
ever sends one POST and reads its answer. It does what the relay's httpx client was
set up to do: HTTP/1.1 only, TLS verified as httpx verifies it (certifi's CAs), no
proxy from the environment (mitmproxy ignores it too), no redirects, no cookies, idle
connections kept 5 s. Its errors are httpx's, so a failed attempt reads as before.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Callable

import httpx

from modelmux.attempt import http1

try:  # httpx's own optional decoder for br, installed beside it or not
    import brotli
except ImportError:
    brotli = None

KEEP_ALIVE = 5.0  # seconds an idle connection is kept (httpcore's keepalive_expiry)
MAX_IDLE = 64  # idle connections kept per origin (the relay's httpx client kept 64 in all)
READ_SIZE = 64 * 1024

Origin = tuple[str, str, int]  # scheme, host, port


class Response:
    """An upstream's answer: its head, and its body read as the caller asks for it.
    `headers`: by lowercase name, repeated ones joined with ", " (as httpx's items());
    `fields`: as they came."""

    def __init__(self, sender: Sender, origin: Origin, connection: _Connection, head: http1.Head,
                 read_timeout: float) -> None:
        self.status_code = head.status
        self.reason_phrase = head.reason
        self.fields = head.fields
        self.headers: dict[str, str] = {}
        for name, value in self.fields:
            self.headers[name] = f"{self.headers[name]}, {value}" if name in self.headers else value
        self._sender, self._origin, self._connection = sender, origin, connection
        self._read_timeout = read_timeout

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as it comes (chunked framing undone, any content-encoding kept): what
        one read brought."""
        connection = self._connection
        assert connection is not None, "read before it was closed"
        while True:
            if data := connection.body():
                yield data
            if connection.answer.ended:
                return
            await connection.receive(self._read_timeout)

    async def aread(self) -> bytes:
        """The whole body, decoded as its content-encoding says."""
        return self.decoded(b"".join([chunk async for chunk in self.aiter_raw()]))

    def decoded(self, raw: bytes) -> bytes:
        """`raw`, all or the start of the body, decoded as httpx decodes it (gzip, deflate,
        br; an encoding it does not know is left as it is)."""
        for encoding in reversed(self.headers.get("content-encoding", "").lower().split(",")):
            if (decode := _DECODERS.get(encoding.strip())) is not None:
                try:
                    raw = decode(raw)
                except Exception as e:  # zlib.error, brotli.error
                    raise httpx.DecodingError(f"the answer's {encoding.strip()} body does not decode: {e}") from e
        return raw

    def close(self) -> None:
        """Done with the answer: its connection is kept for the next request if the body
        was read to its end, else closed."""
        connection, self._connection = self._connection, None
        if connection is not None:
            self._sender.release(self._origin, connection)


def tls_context(insecure: bool = False, ca_file: str | None = None, ca_dir: str | None = None) -> ssl.SSLContext:
    """What an upstream's certificate is checked against, as mitmproxy's own upstream
    connections check it under its options `ssl_insecure`, `ssl_verify_upstream_trusted_ca`
    and `ssl_verify_upstream_trusted_confdir`: certifi's CAs, or only the CAs given, or
    nothing at all."""
    if ca_file or ca_dir:
        context = ssl.create_default_context(cafile=ca_file, capath=ca_dir)
    else:  # the context of the httpx client the relay had (trust_env off)
        context = httpx.create_ssl_context(trust_env=False)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Sender:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls or tls_context()
        self._idle: dict[Origin, list[_Connection]] = {}

    @property
    def tls(self) -> ssl.SSLContext:
        """The context of the connections made from now on (those kept idle stay)."""
        return self._tls

    @tls.setter
    def tls(self, context: ssl.SSLContext) -> None:
        context.set_alpn_protocols(["http/1.1"])
        self._tls = context

    async def post(self, url: str, headers: list[tuple[str, str]], body: bytes, connect_timeout: float,
                   read_timeout: float) -> Response:
        """Sends `body` to `url` with `headers` (framing and Host are the Sender's), and
        returns once the answer's head came. `read_timeout`: the longest the upstream may
        be silent (or not take the request) from then on. A connection that fails is closed."""
        origin, target, host = _parts(url)
        try:
            head = http1.request_head(target, host, headers, len(body))
        except ValueError as e:  # it names the header, never its value (which may be a credential)
            raise httpx.LocalProtocolError(f"{e} (not sent)") from None
        connection = self._reused(origin) or await self._connect(origin, connect_timeout)
        try:
            connection.send(head, body)
            await connection.drain(read_timeout)
            while (answer := connection.head()) is None:  # 1xx are skipped, as httpx does
                await connection.receive(read_timeout)
        except BaseException:
            connection.close()
            raise
        return Response(self, origin, connection, answer, read_timeout)

    def release(self, origin: Origin, connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) < MAX_IDLE and connection.answer.reusable and connection.open():
            connection.idle_since = time.monotonic()
            idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    def _reused(self, origin: Origin) -> _Connection | None:
        """The most recently used idle connection to `origin` that can take a request;
        those that expired or that the upstream closed are closed."""
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if now - connection.idle_since < KEEP_ALIVE and connection.open():
                return connection
            connection.close()
        return None

    async def _connect(self, origin: Origin, timeout: float) -> _Connection:
        scheme, host, port = origin
        tls = self.tls if scheme == "https" else None
        try:
            async with asyncio.timeout(timeout):
                # A host's addresses are tried one after the other. asyncio's happy eyeballs
                # (httpx's anyio backend had them) fail an assertion in staggered_race under
                # mitmproxy's eager task factory on Python 3.13.0: every connection failed.
                reader, writer = await asyncio.open_connection(host, port, ssl=tls, limit=READ_SIZE)
        except TimeoutError as e:
            raise httpx.ConnectTimeout(f"no connection within {timeout:g} s") from e
        except ssl.SSLCertVerificationError as e:  # in mitmproxy's words, as its own path says it
            raise httpx.ConnectError(f"Certificate verify failed: {e.verify_message}") from e
        except ssl.SSLError as e:
            raise httpx.ConnectError(f"TLS handshake failed: {e.reason or e}") from e
        except OSError as e:  # refused, unknown host
            raise httpx.ConnectError(str(e) or type(e).__name__) from e
        return _Connection(reader, writer)


class _Connection:
    """One keep-alive connection and the answer it is reading."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.answer = http1.Answer()
        self.idle_since = 0.0

    def send(self, head: bytes, body: bytes) -> None:
        """A request, and a fresh answer to read for it."""
        self.answer = http1.Answer()
        # One write (sendmsg): head and body leave together, Nagle off or not.
        self.writer.writelines([head, body])

    async def drain(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self.writer.drain()
        except TimeoutError as e:
            raise httpx.WriteTimeout(f"the request was not taken within {timeout:g} s") from e
        except OSError as e:
            raise httpx.WriteError(str(e) or type(e).__name__) from e

    def head(self) -> http1.Head | None:
        try:
            return self.answer.head()
        except http1.ProtocolError as e:
            raise httpx.RemoteProtocolError(str(e)) from e

    def body(self) -> bytes:
        try:
            return self.answer.body()
        except http1.ProtocolError as e:
            raise httpx.RemoteProtocolError(str(e)) from e

    async def receive(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                data = await self.reader.read(READ_SIZE)
        except TimeoutError as e:
            raise httpx.ReadTimeout(f"nothing came for {timeout:g} s") from e
        except OSError as e:
            raise httpx.ReadError(str(e) or type(e).__name__) from e
        self.answer.feed(data)  # b"": the upstream closed its end

    def open(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


@functools.lru_cache(maxsize=256)
def _parts(url: str) -> tuple[Origin, bytes, bytes]:
    """Where `url` is (scheme, host, port), its request target and Host header, as httpx
    puts them (its URL percent-encodes what a request line may not hold)."""
    parsed = httpx.URL(url)
    default = 443 if parsed.scheme == "https" else 80
    return (parsed.scheme, parsed.raw_host.decode("ascii"), parsed.port or default), parsed.raw_path, parsed.netloc


def origin_of(url: str) -> str:
    """Where `url` is, as mitmproxy names a server: scheme, host and port, never the path
    or a query (which may hold a key)."""
    (scheme, host, port), _, _ = _parts(url)
    return f"{scheme}://{host}:{port}"


def _gunzip(raw: bytes) -> bytes:
    return zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(raw)


def _inflate(raw: bytes) -> bytes:
    """Deflate as servers send it: zlib-wrapped, or raw (against RFC 9110; httpx takes both)."""
    try:
        return zlib.decompressobj().decompress(raw)
    except zlib.error:
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw)


_DECODERS: dict[str, Callable[[bytes], bytes]] = {"gzip": _gunzip, "x-gzip": _gunzip, "deflate": _inflate}
if brotli is not None:
    _DECODERS["br"] = lambda raw: brotli.Decompressor().process(raw)
