"""What a replay compares, and how a difference reads.

Two sides, each the answer the client got and the requests sent upstream: as recorded,
and now. What legitimately changes from run to run is normalised on both: message,
tool and request ids (each becomes a placeholder numbered by first appearance, so a
tool_result still visibly points at its tool_use), timestamps and durations, the last
four characters of redacted keys, modelmux's version in its user agent, transport
headers, and modelmux's keep-alive pings, which depend on how long the upstream took.
A difference is a unified diff of pretty
JSON, one block per SSE event, each hunk naming the event it is in. Pure: plain data in,
text out.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from modelmux.translate.sse import EventSplitter, parse_event

# Transport and per-run headers: they say nothing about the translation.
VOLATILE_HEADERS = frozenset({
    "date", "server", "host", "content-length", "transfer-encoding", "connection", "keep-alive", "expires", "age",
})  # fmt: skip
# A replay marks each request it sends with this header (the gateway strips x-modelmux-*
# before any upstream), to find the gateway's record of it.
REPLAY_HEADER = "x-modelmux-replay"
TITLE = "── "
UNMATCHED = ("note: what is sent upstream changed. Server replay answers only a request whose body is "
             "byte for byte the recorded one, so a changed request got no recorded answer (404).")

_IDS = re.compile(r"\b(?:(?:msg|toolu|srvtoolu|req|call|resp)_|chatcmpl-)[A-Za-z0-9_-]{4,}")
_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
_SPAN = re.compile(r"\b\d+ (?:h|min|s)\b(?: \d+ (?:min|s)\b)*")  # cooldowns.span()
_LAST_FOUR = re.compile(r"…[^\s\"',;]{0,4}")  # credentials.redacted(): label…abcd
# The user agent third parties get (headers.USER_AGENT): a new version is no new request.
_USER_AGENT = re.compile(r"\bmodelmux/[0-9][0-9A-Za-z.+-]*")
_HUNK = re.compile(r"@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass(frozen=True)
class Answer:
    """What the client received."""

    status: int  # 0: no answer (the client got an error from the connection)
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Sent:
    """One request sent upstream, an attempt of the failover trail."""

    method: str
    path: str  # with the query
    body: bytes
    headers: list[tuple[str, str]] | None = None  # None: not captured (an earlier, failed attempt)


@dataclass(frozen=True)
class Side:
    answer: Answer
    sent: list[Sent] = field(default_factory=list)


class Normaliser:
    """Replaces run-to-run values; one per side, so ids number in order of appearance."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def text(self, text: str) -> str:
        text = _IDS.sub(self._id, text)
        text = _TIME.sub("<time>", text)
        text = _SPAN.sub("<span>", text)
        text = _USER_AGENT.sub("modelmux/<version>", text)
        return _LAST_FOUR.sub("…", text)

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value

    def _id(self, match: re.Match[str]) -> str:
        found = match.group(0)
        if found not in self.ids:
            kind = found.split("_")[0] if "_" in found else "chatcmpl"
            self.ids[found] = f"<{kind}:{len(self.ids) + 1}>"
        return self.ids[found]


def lines(side: Side) -> list[str]:
    """A side as the text a diff compares: titled blocks of pretty JSON, the requests
    sent upstream first (a change there is the cause of any change in the answer)."""
    norm = Normaliser()
    answer = side.answer
    out = _sent_lines(side.sent, norm)
    out += [f"{TITLE}client received: status {answer.status} ──", *_header_lines(answer.headers, norm)]
    return out + _body_lines(answer.body, _content_type(answer.headers), norm, "client received")


def _sent_lines(sent: list[Sent], norm: Normaliser) -> list[str]:
    out: list[str] = []
    for number, request in enumerate(sent, 1):
        what = f"upstream request {number}"
        out.append(f"{TITLE}{what}: {request.method} {norm.text(request.path)} ({len(request.body)} bytes) ──")
        if request.headers is not None:
            out += _header_lines(request.headers, norm)
        out += _body_lines(request.body, _content_type(request.headers or []), norm, what)
    return out


def differences(recorded: Side, now: Side, name: str = "") -> str:
    """"" when both sides read the same; else a unified diff, recorded → now."""
    before, after = lines(recorded), lines(now)
    if before == after:
        return ""
    label = f" {name}" if name else ""
    diff = difflib.unified_diff(before, after, f"recorded{label}", f"now{label}", lineterm="")
    text = "\n".join(_named_hunks(list(diff), before, after))
    if _sent_lines(recorded.sent, Normaliser()) != _sent_lines(now.sent, Normaliser()):
        text = f"{UNMATCHED}\n{text}"
    return text


def events(body: bytes) -> list[tuple[str, str]]:
    """An SSE body as (event name, data) pairs, pings left out; the name falls back to
    the data's "type" (OpenAI's events have no `event:` line)."""
    splitter = EventSplitter()
    raw = splitter.feed(body)
    if rest := splitter.rest().strip():
        raw.append(rest)  # a stream cut short: its last, unterminated event counts too
    found = []
    for item in raw:
        event = parse_event(item)
        name = event.name or _json_type(event.data) or "message"
        if name != "ping":
            found.append((name, event.data))
    return found


def _header_lines(headers: list[tuple[str, str]], norm: Normaliser) -> list[str]:
    kept = sorted(
        (name.lower(), "<seconds>" if name.lower() == "retry-after" else norm.text(value))
        for name, value in headers
        if name.lower() not in VOLATILE_HEADERS and name.lower() != REPLAY_HEADER
    )
    return [f"{name}: {value}" for name, value in kept]


def _body_lines(body: bytes, content_type: str, norm: Normaliser, what: str) -> list[str]:
    if not body:
        return []
    if content_type.startswith("text/event-stream"):
        out = []
        for number, (name, data) in enumerate(events(body), 1):
            out += [f"{TITLE}{what}: event {number} {name} ──", *_data_lines(data, norm)]
        return out
    return [f"{TITLE}{what}: body ──", *_data_lines(body.decode("utf-8", "replace"), norm)]


def _data_lines(text: str, norm: Normaliser) -> list[str]:
    try:
        data = json.loads(text)
    except ValueError:
        return norm.text(text).splitlines()
    return json.dumps(norm.value(data), indent=2, ensure_ascii=False).splitlines()


def _json_type(data: str) -> str | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) else None


def _content_type(headers: list[tuple[str, str]]) -> str:
    return next((value for name, value in headers if name.lower() == "content-type"), "")


def _named_hunks(diff: list[str], before: list[str], after: list[str]) -> list[str]:
    """The diff with each hunk's @@ line naming the block its first change is in, as
    `git diff` names the function."""
    out: list[str] = []
    for index, line in enumerate(diff):
        found = _HUNK.match(line)
        if not found:
            out.append(line)
            continue
        old, new = int(found.group(1)) - 1, int(found.group(2)) - 1
        for following in diff[index + 1 :]:
            if following[:1] in ("-", "+"):
                side, at = (before, old) if following[:1] == "-" else (after, new)
                out.append(f"{line} {_block_title(side, at)}".rstrip())
                break
            old, new = old + 1, new + 1
        else:
            out.append(line)
    return out


def _block_title(text: list[str], index: int) -> str:
    for line in reversed(text[: index + 1]):
        if line.startswith(TITLE):
            return line.strip("─ ")
    return ""
