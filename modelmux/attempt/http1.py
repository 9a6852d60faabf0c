"""HTTP/1.1 for the relay's Sender, without I/O: a POST's head as bytes, and an
upstream's answer read from bytes as they come, its head first, then its body with
the framing undone. Pure, in h11's manner: bytes in, values out, and what is not HTTP
raises (`ProtocolError` for the upstream's bytes, ValueError for a header of ours).

It took h11.Connection's place in the Sender (issue 19). h11 runs every piece of a
body through its state machine as an event: 5.7 µs a chunk, so the 56 chunks of a
burst of SSE events cost 320 µs before the first could be passed on, where this reads
them at about 1 µs each. Framing is RFC 9112's (§6.3), as h11 and mitmproxy read it:
an answer to a POST has a body unless it is 1xx, 204 or 304; Transfer-Encoding wins
over Content-Length, and a body with neither ends when the upstream closes. Where h11
had words for a broken answer, they are h11's, which mitmproxy's own path shows too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEAD_LIMIT = 64 * 1024  # an answer's status line and headers
LINE_LIMIT = 4 * 1024  # a chunk's size line or a trailer field

_NAME = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")  # RFC 9110 token
_NOT_IN_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")  # controls but HTAB; what latin-1 cannot write
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_STATUS = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: (.*))?")
_FIELD = re.compile(rb"([^:\s]+):[ \t]*(.*?)[ \t]*")
_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;.*)?")


class ProtocolError(Exception):
    """The upstream's bytes are not an HTTP/1.1 answer."""


def request_head(target: bytes, host: bytes, headers: list[tuple[str, str]], length: int) -> bytes:
    """A POST's head, `headers` as given (names and values latin-1, values stripped of
    surrounding blanks), framed by `length` bytes of body. ValueError names the header
    HTTP does not allow, never its value (which may be a credential)."""
    lines = [b"POST %s HTTP/1.1\r\nhost: %s\r\n" % (target, host)]
    for name, value in headers:
        if not _NAME.fullmatch(name):
            raise ValueError(f"header name {name!r} is not an HTTP token")
        if _NOT_IN_VALUE.search(value):
            raise ValueError(f"header '{name}': its value holds a character HTTP does not allow")
        lines.append(b"%s: %s\r\n" % (name.encode("latin-1"), value.strip(" \t").encode("latin-1")))
    lines.append(b"content-length: %d\r\n\r\n" % length)
    return b"".join(lines)


@dataclass(frozen=True)
class Head:
    status: int
    reason: str
    fields: list[tuple[str, str]]  # as they came, names lowercased (latin-1)
    version: str  # "1.1" or "1.0"


class Answer:
    """One answer to a POST, read from the bytes `feed` is given (b"": the upstream
    closed): `head()` once it is all there, then `body()` for what has come of the body
    since. `ended` once the body is complete; `reusable` then says whether the
    connection can carry another request."""

    def __init__(self) -> None:
        self._buffer = b""
        self._at = 0  # where the unread bytes start
        self._closed = False
        self._head: Head | None = None
        self._framing = ""  # "length", "chunked" or "close", once the head is read
        self._left = 0  # bytes of body still to come (length), or of the current chunk (chunked)
        self._received = 0  # of a length-framed body, for the error that cuts it short
        self._chunk_state = "size"  # "size", "data", "data end", "trailers", "ended"
        self._keep_alive = False
        self.ended = False

    def feed(self, data: bytes) -> None:
        if not data:
            self._closed = True
        elif self._at < len(self._buffer):
            self._buffer = self._buffer[self._at :] + data
            self._at = 0
        else:
            self._buffer, self._at = data, 0

    @property
    def reusable(self) -> bool:
        return self.ended and self._keep_alive and self._at == len(self._buffer) and not self._closed

    def head(self) -> Head | None:
        """The answer's head (interim 1xx answers skipped), or None until it has come."""
        while self._head is None:
            found = _HEAD_END.search(self._buffer, self._at)
            if found is None:
                if len(self._buffer) - self._at > HEAD_LIMIT:
                    raise ProtocolError(f"the answer's head is longer than {HEAD_LIMIT // 1024} KB")
                if self._closed:
                    raise ProtocolError("server closed connection")  # mitmproxy's words, as its own path says it
                return None
            block = self._buffer[self._at : found.start()]
            self._at = found.end()
            head = _read_head(block)
            if head.status == 101:
                raise ProtocolError("the upstream switched protocols, which no request asked for")
            if head.status >= 200:
                self._frame(head)
                self._head = head
        return self._head

    def body(self) -> bytes:
        """What has come of the body since the last call, framing undone. What came
        before the upstream broke off is given first; the next call raises."""
        assert self._head is not None, "the head comes first"
        if self.ended:
            return b""
        piece = self._chunks() if self._framing == "chunked" else self._plain()
        if not piece and self._closed and not self.ended:
            if self._framing == "chunked":
                raise ProtocolError("peer closed connection without sending complete message body: "
                                    "incomplete chunked read")
            raise ProtocolError("peer closed connection without sending complete message body: "
                                f"received {self._received} bytes, expected {self._received + self._left}")
        return piece

    def _plain(self) -> bytes:
        """A body delimited by its length, or by the upstream closing."""
        if self._framing == "length":
            piece = self._buffer[self._at : self._at + self._left]
            self._left -= len(piece)
            self._received += len(piece)
            self.ended = not self._left
        else:
            piece = self._buffer[self._at :]
            self.ended = self._closed
        self._at += len(piece)
        return piece

    def _frame(self, head: Head) -> None:
        """How the body is delimited (RFC 9112 §6.3), and whether the connection is kept."""
        encodings: list[str] = []
        lengths: set[str] = set()
        close = head.version == "1.0"
        for name, value in head.fields:
            if name == "transfer-encoding":
                encodings += [coding.strip().lower() for coding in value.split(",")]
            elif name == "content-length":
                lengths.update(part.strip() for part in value.split(","))
            elif name == "connection":
                close = close or "close" in (token.strip().lower() for token in value.split(","))
        if head.status in (204, 304):
            self._framing, self.ended = "length", True
        elif encodings:
            self._framing = "chunked" if encodings[-1] == "chunked" else "close"
            close = close or bool(lengths)  # both: the length is wrong, and so may the next answer be
        elif lengths:
            if len(lengths) > 1 or not all(length.isdigit() and length.isascii() for length in lengths):
                raise ProtocolError(f"the answer's Content-Length is not one number: {', '.join(sorted(lengths))}")
            self._framing, self._left = "length", int(lengths.pop())
            self.ended = not self._left
        else:
            self._framing = "close"
        self._keep_alive = not close and self._framing != "close"

    def _chunks(self) -> bytes:
        buffer, at, pieces = self._buffer, self._at, []
        state, left = self._chunk_state, self._left  # locals: this runs for every chunk of a stream
        while state != "ended":
            if state == "data":
                piece = buffer[at : at + left]
                if not piece:
                    break
                pieces.append(piece)
                at += len(piece)
                left -= len(piece)
                if not left:
                    state = "data end"
                continue
            end = buffer.find(b"\r\n", at)
            if end < 0:
                if len(buffer) - at > LINE_LIMIT + 2:
                    raise ProtocolError("a chunk's size line or trailer is too long")
                break
            line = buffer[at:end]
            at = end + 2
            if state == "size":
                size = _SIZE.fullmatch(line)
                if size is None:
                    raise ProtocolError("illegal chunk header: a size in hex was expected")
                left = int(size[1], 16)
                if not left:
                    state = "trailers"
                elif buffer[at + left : at + left + 2] == b"\r\n":  # the whole chunk is here
                    pieces.append(buffer[at : at + left])
                    at += left + 2
                    left = 0
                else:
                    state = "data"
            elif state == "data end":
                if line:
                    raise ProtocolError("a chunk is longer than its size said")
                state = "size"
            elif not line:  # the empty line after the trailers (usually none) ends the body
                state = "ended"
        self._at, self._chunk_state, self._left = at, state, left
        self.ended = state == "ended"
        return b"".join(pieces)


def _read_head(block: bytes) -> Head:
    lines = block.replace(b"\r\n", b"\n").split(b"\n")
    status = _STATUS.fullmatch(lines[0])
    if status is None:
        raise ProtocolError("the answer does not start with an HTTP/1.x status line")
    fields: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and fields:  # obs-fold: the field's value goes on (h11 joins it with a space)
            name, value = fields[-1]
            more = line.strip(b" \t").decode("latin-1")
            fields[-1] = (name, f"{value} {more}" if value else more)
            continue
        field = _FIELD.fullmatch(line)
        if field is None or not _NAME.fullmatch(name := field[1].decode("latin-1")):
            raise ProtocolError("the answer has a header line that is not `name: value`")  # not quoted: it may hold a key
        fields.append((name.lower(), field[2].decode("latin-1")))
    return Head(int(status[2]), (status[3] or b"").decode("ascii", "ignore"), fields, f"1.{status[1].decode()}")
