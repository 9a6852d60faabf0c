"""Credential pools, cooldowns and failover against the real gateway and fault-injecting
upstreams: which credential each upstream saw, in which order, and exactly what the
client got."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from echoing import echo
from gateway import Gateway
from leaks import flows_in
from openai_upstream import GREETING, openai_like
from test_security import exchange
from upstream import Behaviour, Drop, Hang, Received, Reply, Stream, Upstream, anthropic_like, message_events, sse

KEYS = {
    "a": "key-zai-aaaaaaaa-0001", "b": "key-zai-bbbbbbbb-0002", "c": "key-zai-cccccccc-0003",
    "solo": "key-backup-solo-0004", "o1": "sk-oai-oooooooo-0005", "one": "key-limited-one-0006",
    "s1": "key-sticky-s1-0007", "s2": "key-sticky-s2-0008", "s3": "key-sticky-s3-0009",
}
LABELS = {key: label for label, key in KEYS.items()}
SCRIPTS = Path(__file__).parent / "scripts"
ENV = {f"KEY_{label.upper()}": key for label, key in KEYS.items()}


def creds(*labels: str, extra: str = "") -> str:
    return "[" + ", ".join(f"{{label: {x}, key: '${{KEY_{x.upper()}}}'{extra}}}" for x in labels) + "]"


def routes(pool: Upstream, backup: Upstream, oai: Upstream) -> str:
    return f"""
providers:
  zai:
    protocol: anthropic
    base_url: "{pool.url}"
    credentials: {creds("a", "b", "c")}
    connect_timeout: 1
    response_timeout: 1.5
  backup:
    protocol: anthropic
    base_url: "{backup.url}"
    credentials: {creds("solo")}
  oai:
    protocol: openai-chat
    base_url: "{oai.url}/v1"
    credentials: {creds("o1")}
  limited:
    protocol: anthropic
    base_url: "{backup.url}"
    credentials: {creds("one", extra=", max_concurrent: 1")}
    max_wait: 0.5
  sticky:
    protocol: anthropic
    base_url: "{pool.url}"
    credentials: {creds("s1", "s2", "s3")}
    affinity: true
  mine:
    protocol: anthropic
    base_url: "{backup.url}"
    auth: passthrough
routes:
  - {{match: "glm-*", provider: zai, fallback: [{{provider: backup, model: backup-model}}]}}
  - {{match: "chat-*", provider: zai, fallback: [{{provider: oai, model: gpt-x}}]}}
  - {{match: "pool-*", provider: zai}}
  - {{match: "solo-*", provider: backup}}
  - {{match: "limited-*", provider: limited}}
  - {{match: "sticky-*", provider: sticky}}
  - {{match: "mine-*", provider: mine, fallback: [zai]}}
  - {{match: "own-*", provider: mine}}
"""


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, Upstream]]:
    with Upstream() as pool, Upstream() as backup, Upstream() as oai:
        yield {"pool": pool, "backup": backup, "oai": oai}


@pytest.fixture(scope="module")
def gateway(upstreams, tmp_path_factory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("failover")
    flows = directory / "flows.mitm"
    text = routes(upstreams["pool"], upstreams["backup"], upstreams["oai"])
    with Gateway(directory, text, ENV, ["-w", str(flows)]) as gw:
        gw.flows = flows  # type: ignore[attr-defined]
        yield gw


@pytest.fixture(autouse=True)
def fresh(upstreams, gateway) -> None:
    gateway.reset_credentials()
    for server in upstreams.values():
        server.received.clear()
        server.aborted.clear()
    upstreams["pool"].reply = upstreams["backup"].reply = anthropic_like
    upstreams["oai"].reply = openai_like


def script(upstream: Upstream, **by_label: Behaviour | Callable[[Received], Behaviour]) -> None:
    """Answer requests carrying credential LABEL's key with its behaviour; others normally."""
    normal = upstream.reply

    def reply(request: Received) -> Behaviour:
        behaviour = by_label.get(label_of(request), normal)
        return behaviour(request) if callable(behaviour) else behaviour

    upstream.reply = reply


def label_of(request: Received) -> str:
    key = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
    return LABELS.get(key, f"unknown key {key!r}")


def seen(upstream: Upstream) -> list[str]:
    return [label_of(r) for r in upstream.received]


def post(gateway: Gateway, model: str, stream: bool = False, **headers: str) -> httpx.Response:
    body = {"model": model, "max_tokens": 16, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{gateway.url}/v1/messages", json=body, headers=headers, timeout=15)


def events(response: httpx.Response) -> list[tuple[str, dict]]:
    found = re.findall(r"event: (\w+)\ndata: (.*)\n\n", response.text)
    return [(name, json.loads(data)) for name, data in found]


def text_of(response: httpx.Response) -> str:
    return "".join(d["delta"].get("text", "") for n, d in events(response) if n == "content_block_delta")


def credential(gateway: Gateway, provider: str, label: str) -> dict:
    return next(c for c in gateway.credentials()["providers"][provider]["credentials"] if c["label"] == label)


def error_reply(status: int, error_type: str, message: str, **headers: str) -> Reply:
    body = json.dumps({"type": "error", "error": {"type": error_type, "message": message}}).encode()
    return Reply(status, body, {"content-type": "application/json", **headers})


RATE_LIMITED = error_reply(429, "rate_limit_error", "slow down", **{"retry-after": "30"})


# -- the next credential -------------------------------------------------------------


def test_a_rate_limited_credential_is_skipped_until_the_upstream_says(gateway, upstreams):
    script(upstreams["pool"], a=RATE_LIMITED)
    response = post(gateway, "pool-1")
    assert response.status_code == 200
    assert response.json()["content"][0]["text"] == "Hello from the fake upstream."
    assert seen(upstreams["pool"]) == ["a", "b"]
    state = credential(gateway, "zai", "a")
    assert state["state"] == "cooling"
    [cooldown] = state["cooldowns"]
    assert (cooldown["kind"], cooldown["reason"], cooldown["status"]) == (
        "rate_limit", "429: rate limited; the upstream said retry in 30 s", 429)
    assert 28 < cooldown["seconds_left"] <= 30
    for _ in range(4):
        assert post(gateway, "pool-1").status_code == 200
    assert seen(upstreams["pool"])[2:] == ["c", "b", "c", "b"]  # a sits out; the others take turns


def test_a_429_without_a_stated_wait_backs_off(gateway, upstreams):
    script(upstreams["pool"], a=error_reply(429, "rate_limit_error", "slow down"))
    assert post(gateway, "pool-1").status_code == 200
    [cooldown] = credential(gateway, "zai", "a")["cooldowns"]
    assert cooldown["reason"] == "429: rate limited; backing off 5 s"
    assert 3 < cooldown["seconds_left"] <= 5


@pytest.mark.parametrize("stream", [False, True])
def test_a_bad_request_is_not_replayed_on_other_credentials(gateway, upstreams, stream):
    rejected = error_reply(400, "invalid_request_error", "messages: text content blocks must be non-empty")
    script(upstreams["pool"], a=rejected)
    response = post(gateway, "glm-1", stream)
    assert (response.status_code, response.content) == (400, rejected.body)
    assert seen(upstreams["pool"]) == ["a"] and upstreams["backup"].received == []
    assert credential(gateway, "zai", "a")["state"] == "healthy"


@pytest.mark.parametrize("fault", [
    Reply(500, b"<html>Internal Server Error</html>", {"content-type": "text/html"}),
    Drop(),
    Stream([]),  # a 200 stream that ends at once
    Stream(message_events("m")[:1]),  # ... or after message_start
    Stream([*message_events("m")[:1], sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})]),
], ids=["500", "drop", "empty-stream", "only-message-start", "overloaded-event"])
def test_a_failure_before_the_first_event_goes_to_the_next_credential(gateway, upstreams, fault):
    script(upstreams["pool"], a=fault)
    response = post(gateway, "pool-1", stream=True)
    assert response.status_code == 200
    names = [name for name, _ in events(response)]
    assert names == ["message_start", "content_block_start", *["content_block_delta"] * 5,
                     "content_block_stop", "message_delta", "message_stop"]
    assert text_of(response) == "Hello from the fake upstream."
    assert seen(upstreams["pool"]) == ["a", "b"]
    assert credential(gateway, "zai", "a")["state"] == "unhealthy"


def test_a_hang_past_the_timeout_goes_to_the_fallback_provider(gateway, upstreams):
    """A timeout says the host failed, not the key: another key of the same host would wait too."""
    script(upstreams["pool"], a=Hang())
    started = time.monotonic()
    response = post(gateway, "glm-1")
    assert response.status_code == 200 and 1.4 < time.monotonic() - started < 5
    assert response.json()["model"] == "glm-1"  # the client sees the model it asked for
    assert seen(upstreams["pool"]) == ["a"]
    assert [(label_of(r), r.json()["model"]) for r in upstreams["backup"].received] == [("solo", "backup-model")]


# -- fallback providers and giving up -------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_when_the_pool_fails_the_fallback_provider_answers_with_its_own_model(gateway, upstreams, stream):
    failing = error_reply(500, "api_error", "Internal server error")
    script(upstreams["pool"], a=failing, b=failing, c=failing)
    response = post(gateway, "glm-1", stream)
    assert response.status_code == 200
    assert seen(upstreams["pool"]) == ["a", "b", "c"]
    assert [(label_of(r), r.json()["model"]) for r in upstreams["backup"].received] == [("solo", "backup-model")]
    if stream:
        assert events(response)[0][1]["message"]["model"] == "glm-1"
        assert text_of(response) == "Hello from the fake upstream."
    else:
        assert response.json()["model"] == "glm-1"


@pytest.mark.parametrize("stream", [False, True])
def test_a_fallback_of_another_protocol_is_translated(gateway, upstreams, stream):
    overloaded = error_reply(529, "overloaded_error", "Overloaded")
    script(upstreams["pool"], a=overloaded, b=overloaded, c=overloaded)
    response = post(gateway, "chat-1", stream)
    assert response.status_code == 200
    [sent] = upstreams["oai"].received
    assert (sent.path, sent.json()["model"], label_of(sent)) == ("/v1/chat/completions", "gpt-x", "o1")
    assert "x-api-key" not in sent.headers  # neither the zai key nor the client's
    if stream:
        assert text_of(response) == GREETING
        assert [n for n, _ in events(response)][-1] == "message_stop"
    else:
        assert (response.json()["model"], response.json()["content"][0]["text"]) == ("chat-1", GREETING)


def test_everything_rate_limited_is_a_429_with_the_earliest_recovery(gateway, upstreams):
    def limited(seconds: int) -> Reply:
        return error_reply(429, "rate_limit_error", "slow down", **{"retry-after": str(seconds)})

    script(upstreams["pool"], a=limited(30), b=limited(20), c=limited(40))
    script(upstreams["backup"], solo=limited(50))
    response = post(gateway, "glm-1")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "20"
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert re.fullmatch(
        r"every upstream for model 'glm-1' is rate limited: zai/a 429; zai/b 429; zai/c 429; backup/solo 429; "
        r"the first recovers at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 20 s\)", error["message"]), error["message"]
    assert len(upstreams["pool"].received) + len(upstreams["backup"].received) == 4  # server.max_attempts

    again = post(gateway, "glm-1")  # now answered without asking anyone
    assert again.status_code == 429 and int(again.headers["retry-after"]) in (19, 20)
    assert again.json()["error"]["message"].startswith(
        "every upstream for model 'glm-1' is rate limited: every credential of provider 'zai' is rate limited "
        "for model 'glm-1' (a until ")
    assert len(upstreams["pool"].received) + len(upstreams["backup"].received) == 4


def test_everything_failing_is_a_503_naming_each_attempt(gateway, upstreams):
    failing = Reply(502, b"bad gateway", {"content-type": "text/plain"})
    script(upstreams["pool"], a=failing, b=failing, c=failing)
    script(upstreams["backup"], solo=Drop())
    response = post(gateway, "glm-1")
    assert response.status_code == 503
    assert response.json()["error"] == {
        "type": "overloaded_error",
        "message": "no upstream could serve model 'glm-1' (4 attempts): zai/a 502; zai/b 502; zai/c 502; backup/solo reset"}
    # Upstream errors only order credentials: the next request is sent at once, so
    # modelmux names no wait of its own.
    assert "retry-after" not in response.headers


def test_a_request_fault_wrapped_in_a_5xx_is_not_replayed_on_the_fallback(gateway, upstreams):
    """The client's own token (passthrough) is judged like a pool's credential: a 5xx
    whose body says the request is invalid goes back as it is."""
    wrapped = error_reply(500, "invalid_request_error", "tools.0.name: String should match pattern")
    upstreams["backup"].reply = lambda request: wrapped
    token = "sk-ant-client-own-token-0010"
    response = post(gateway, "mine-1", **{"x-api-key": token})
    assert (response.status_code, response.content) == (500, wrapped.body)
    assert [r.headers["x-api-key"] for r in upstreams["backup"].received] == [token]
    assert upstreams["pool"].received == []
    time.sleep(0.3)  # the flow is saved once answered
    assert token.encode() not in gateway.flows.read_bytes()  # type: ignore[attr-defined]
    assert token not in gateway.log.read_text()


def raw_exchange(gateway: Gateway, head: bytes, body: dict) -> tuple[bytes, bytes]:
    """A request sent as bytes with `connection: close`: the answer's head and body, read
    until the gateway closes the connection (a socket timeout if it never does)."""
    content = json.dumps(body).encode()
    answer, _ = exchange(gateway, b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n%scontent-length: %d\r\n"
                                  b"connection: close\r\n\r\n%s" % (head, len(content), content))
    head, _, content = answer.partition(b"\r\n\r\n")
    return head, content


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_asks_to_close_is_closed_on_though_the_flow_shows_the_upstreams_request(gateway, upstreams, stream):
    """The relay's flows show the request the last attempt sent (flows are kept here,
    -w), and that request says nothing of the client's connection."""
    head, content = raw_exchange(gateway, b"", {"model": "pool-1", "max_tokens": 16, "stream": stream,
                                                "messages": [{"role": "user", "content": "hi"}]})
    assert head.startswith(b"HTTP/1.1 200 ") and b"Hello" in content


def test_a_client_header_http_does_not_allow_is_the_clients_400(gateway, upstreams):
    """A passthrough upstream gets the client's headers; one whose value holds a control
    character is not sent on (mitmproxy reads it; the relay does not write it)."""
    head, content = raw_exchange(gateway, b"x-api-key: sk-ant-client-own-token-0011\r\nx-custom: a\x01b\r\n",
                                 {"model": "own-1", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(content) == {"type": "error", "error": {
        "type": "invalid_request_error",
        "message": "header 'x-custom': its value holds a character HTTP does not allow (not sent)"}}
    assert upstreams["backup"].received == []


def test_a_client_header_beyond_ascii_reaches_a_passthrough_upstream_as_sent(gateway, upstreams):
    """mitmproxy reads header bytes as they are; the relay writes them back the same
    (h11, which it used before, took only ASCII and failed the request)."""
    head, content = raw_exchange(gateway, b"x-api-key: sk-ant-client-own-token-0012\r\nx-title: caf\xc3\xa9\r\n",
                                 {"model": "own-1", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
    assert head.startswith(b"HTTP/1.1 200 ") and b"Hello" in content
    assert upstreams["backup"].received[-1].headers["x-title"].encode("latin-1") == b"caf\xc3\xa9"


def test_one_attempt_is_all_there_was_so_the_upstreams_own_error_stands(gateway, upstreams):
    """A provider with one key and no fallback: the upstream's answer, not a summary."""
    script(upstreams["backup"], solo=error_reply(529, "overloaded_error", "Overloaded"))
    response = post(gateway, "solo-1")
    assert (response.status_code, response.json()["error"]) == (529, {"type": "overloaded_error", "message": "Overloaded"})
    upstreams["backup"].reply = anthropic_like
    assert post(gateway, "solo-1").status_code == 200  # the only key is probed, not refused for 10 s
    assert seen(upstreams["backup"]) == ["solo", "solo"]


def test_the_only_key_rate_limited_is_refused_locally_until_it_recovers(gateway, upstreams):
    script(upstreams["backup"], solo=error_reply(429, "rate_limit_error", "slow down", **{"retry-after": "30"}))
    first = post(gateway, "solo-1")
    assert (first.status_code, first.headers["retry-after"]) == (429, "30")
    second = post(gateway, "solo-1")
    assert second.status_code == 429 and int(second.headers["retry-after"]) in (29, 30)
    assert re.fullmatch(
        r"every credential of provider 'backup' is rate limited for model 'solo-1' \(solo until \S+\); "
        r"the first recovers at \S+ \(in (29|30) s\)", second.json()["error"]["message"])
    assert seen(upstreams["backup"]) == ["solo"]


# -- streams -----------------------------------------------------------------------------


def test_a_stream_after_a_failover_still_arrives_progressively(gateway, upstreams):
    pieces = message_events("m")
    script(upstreams["pool"], a=RATE_LIMITED, b=Stream(pieces, delays=[0] * 4 + [1.5] + [0] * (len(pieces) - 5)))
    arrivals: list[tuple[float, bytes]] = []
    started = time.monotonic()
    body = {"model": "pool-1", "max_tokens": 16, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", f"{gateway.url}/v1/messages", json=body, timeout=15) as response:
        for chunk in response.iter_raw():
            arrivals.append((time.monotonic() - started, chunk))
    first_delta = next(t for t, chunk in arrivals if b"content_block_delta" in chunk)
    assert arrivals[-1][0] - first_delta > 1.0  # the first words came while the upstream held the rest
    assert seen(upstreams["pool"]) == ["a", "b"]


def test_a_break_after_the_first_event_ends_the_stream_with_an_error_event(gateway, upstreams):
    script(upstreams["pool"], a=Stream(message_events("m")[:3], complete=False))
    response = post(gateway, "glm-1", stream=True)
    assert response.status_code == 200
    found = events(response)
    assert [n for n, _ in found] == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert found[-1][1]["error"]["type"] == "api_error"
    assert found[-1][1]["error"]["message"].startswith("provider 'zai' broke off its answer mid-stream: ")
    assert seen(upstreams["pool"]) == ["a"] and upstreams["backup"].received == []  # no retry once bytes went out


# The relay sends a stream's head to mitmproxy as soon as an upstream answers with one,
# and decides it (status, headers) only when the client's answer is settled.

def sse_from(attempt: str, pieces: list[bytes]) -> Stream:
    return Stream(pieces, headers={"content-type": "text/event-stream", "x-attempt": attempt})


def test_a_stream_head_sent_before_a_failover_is_the_answering_attempts(gateway, upstreams):
    script(upstreams["pool"], a=sse_from("a", []), b=sse_from("b", message_events("m")))
    response = post(gateway, "pool-1", stream=True)
    assert (response.status_code, response.headers["x-attempt"]) == (200, "b")
    assert response.headers["content-type"] == "text/event-stream"
    assert text_of(response) == "Hello from the fake upstream."
    assert seen(upstreams["pool"]) == ["a", "b"]


def test_a_stream_that_fails_everywhere_after_its_head_went_out_is_an_error_answer(gateway, upstreams):
    script(upstreams["pool"], a=sse_from("a", []), b=sse_from("b", []), c=sse_from("c", []))
    response = post(gateway, "pool-1", stream=True)
    assert response.status_code == 503
    assert (response.headers["content-type"], response.headers["content-length"]) == (
        "application/json", str(len(response.content)))
    assert "transfer-encoding" not in response.headers and "x-attempt" not in response.headers
    assert response.json() == {"type": "error", "error": {
        "type": "overloaded_error",
        "message": "no upstream could serve model 'pool-1' (4 attempts): zai/a reset; zai/b reset; zai/c reset; zai/a reset"}}


@pytest.mark.parametrize("model", ["pool-1", "solo-1"], ids=["relay", "mitmproxy-sent"])
def test_a_client_that_leaves_while_the_upstream_thinks_ends_the_attempt_and_the_flow(gateway, upstreams, model):
    """The relay's head is held in mitmproxy's responseheaders hook until the first
    event; a client that goes away meanwhile still ends the attempt at once."""
    thinking = Stream(message_events("m"), delays=[3.0] + [0.1] * 10)
    script(upstreams["pool"], a=thinking, b=thinking, c=thinking)
    script(upstreams["backup"], solo=thinking)
    provider = "zai" if model == "pool-1" else "backup"
    with pytest.raises(httpx.ReadTimeout):
        post_with_timeout(gateway, model, 0.5)
    server = upstreams["pool" if model == "pool-1" else "backup"]
    label = seen(server)[0]
    deadline = time.monotonic() + 1.5  # well before the upstream's first event
    while credential(gateway, provider, label)["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert credential(gateway, provider, label)["in_flight"] == 0
    time.sleep(0.3)  # the flow is saved once it ended
    last = [f for f in flows_in(gateway.flows) if f.request.path == "/v1/messages"][-1]  # type: ignore[attr-defined]
    assert last.error is not None and last.error.msg == "Client disconnected."  # it ended


@pytest.mark.parametrize("model", ["pool-1", "solo-1"], ids=["relay", "mitmproxy-sent"])
def test_a_client_that_leaves_a_json_request_ends_the_attempt_and_the_flow(gateway, upstreams, model):
    """A request for one JSON answer with somewhere to fail over to is answered in the
    last request hook, without the loopback hop: a client that leaves meanwhile still
    ends it, before the provider's timeout (zai's: 1.5 s)."""
    script(upstreams["pool"], a=Hang(), b=Hang(), c=Hang())
    script(upstreams["backup"], solo=Hang())
    provider = "zai" if model == "pool-1" else "backup"
    with pytest.raises(httpx.ReadTimeout):
        post_with_timeout(gateway, model, 0.5, stream=False)
    label = seen(upstreams["pool" if model == "pool-1" else "backup"])[0]
    time.sleep(0.3)
    assert credential(gateway, provider, label)["in_flight"] == 0
    last = [f for f in flows_in(gateway.flows) if f.request.path == "/v1/messages"][-1]  # type: ignore[attr-defined]
    assert last.error is not None and last.error.msg == "Client disconnected."
    assert last.response is None


def post_with_timeout(gateway: Gateway, model: str, timeout: float, stream: bool = True) -> httpx.Response:
    body = {"model": model, "max_tokens": 16, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(timeout=timeout) as client:
        return client.post(f"{gateway.url}/v1/messages", json=body)


@pytest.mark.parametrize("model", ["pool-1", "solo-1"], ids=["relay", "mitmproxy-sent"])
def test_a_client_that_disconnects_cancels_the_upstream_request(gateway, upstreams, model):
    slow = Stream(message_events("m", " ".join(["word"] * 30)), delays=[0, 0] + [0.1] * 40)
    script(upstreams["pool"], a=slow, b=slow, c=slow)
    script(upstreams["backup"], solo=slow)
    body = {"model": model, "max_tokens": 16, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", f"{gateway.url}/v1/messages", json=body, timeout=15) as response:
        for chunk in response.iter_raw():
            if b"content_block_delta" in chunk:
                break
    server = upstreams["pool" if model == "pool-1" else "backup"]
    deadline = time.monotonic() + 3
    while not server.aborted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(server.aborted) == 1  # the upstream's answer was cut off, not generated to the end
    provider, label = ("zai", seen(server)[0]) if model == "pool-1" else ("backup", "solo")
    time.sleep(0.2)
    assert credential(gateway, provider, label)["in_flight"] == 0


# -- pools ---------------------------------------------------------------------------------


def test_a_refused_key_is_logged_loudly_and_set_aside(gateway, upstreams):
    script(upstreams["pool"], a=error_reply(401, "authentication_error", "invalid x-api-key"))
    assert post(gateway, "pool-1").status_code == 200
    state = credential(gateway, "zai", "a")
    assert state["state"] == "needs attention" and state["cooldowns"][0]["seconds_left"] > 6 * 3600 - 60
    log = gateway.log.read_text()
    assert "credential a…0001 of provider zai: 401: the key was refused (revoked, mistyped or out of credit?)" in log
    assert KEYS["a"] not in log


def test_max_concurrent_makes_a_request_wait_then_refuses_it(gateway, upstreams):
    pieces = message_events("m")
    results: list[httpx.Response] = []
    for delay, expected in ((0.2, 200), (1.5, 429)):
        script(upstreams["backup"], one=Stream(pieces, delays=[delay] + [0] * len(pieces)))
        first = threading.Thread(target=lambda: results.append(post(gateway, "limited-1", stream=True)))
        first.start()
        time.sleep(0.1)
        second = post(gateway, "limited-1", stream=True)
        first.join()
        assert second.status_code == expected
    refused = second.json()["error"]
    assert refused["type"] == "rate_limit_error"
    assert refused["message"] == (
        "every credential of provider 'limited' that could serve model 'limited-1' is busy (one: 1 of 1 requests "
        "in flight) and none was free within 0.5 s; retry shortly, or raise max_concurrent if the vendor allows "
        "more requests at once")
    assert [r.status_code for r in results] == [200, 200]


def test_a_session_sticks_to_one_credential(gateway, upstreams):
    for session in ("session-1", "session-2"):
        for _ in range(4):
            assert post(gateway, "sticky-1", **{"x-claude-code-session-id": session}).status_code == 200
    labels = seen(upstreams["pool"])
    assert len(set(labels[:4])) == 1 and len(set(labels[4:])) == 1 and labels[0] != labels[4]
    upstreams["pool"].received.clear()
    for _ in range(3):
        post(gateway, "sticky-1")
    assert len(set(seen(upstreams["pool"]))) == 3  # no session: plain turns


# -- the record --------------------------------------------------------------------------


def test_every_attempt_is_recorded_on_the_flow(gateway, upstreams):
    from mitmproxy.io import FlowReader

    script(upstreams["pool"], a=RATE_LIMITED)
    assert post(gateway, "pool-7").status_code == 200
    time.sleep(0.3)
    with open(gateway.flows, "rb") as file:  # type: ignore[attr-defined]
        flows = [f for f in FlowReader(file).stream() if f.metadata.get("modelmux", {}).get("requested_model") == "pool-7"]
    [flow] = flows
    attempts = flow.metadata["modelmux"]["attempts"]
    assert [(a["provider"], a["credential"], a["upstream"], a["status"], a["outcome"]) for a in attempts] == [
        ("zai", "a", f"{upstreams['pool'].url}/v1/messages", 429, 429),
        ("zai", "b", f"{upstreams['pool'].url}/v1/messages", 200, 200),
    ]
    assert all(a["ms"] >= 0 for a in attempts)
    assert re.fullmatch(r"🔄 200 · pool-7 → zai/pool-7 · in 12 out 7 · \d+ ms · zai/a 429 → zai/b 200 \[routes\[2\]\]",
                        flow.comment), flow.comment
    assert flow.marked == ":arrows_counterclockwise:"
    saved = gateway.flows.read_bytes()  # type: ignore[attr-defined]
    assert not [label for label, key in KEYS.items() if key.encode() in saved]


def test_state_survives_a_restart(upstreams, tmp_path):
    text = routes(upstreams["pool"], upstreams["backup"], upstreams["oai"])
    script(upstreams["pool"], a=error_reply(429, "rate_limit_error", "quota", **{"retry-after": "18000"}))
    with Gateway(tmp_path, text, ENV) as first:
        assert post(first, "pool-1").status_code == 200
        before = credential(first, "zai", "a")["cooldowns"]
    state = first.state_file(".state.json")
    assert state.stat().st_mode & 0o777 == 0o600
    assert not [label for label, key in KEYS.items() if key in state.read_text()]
    upstreams["pool"].received.clear()
    with Gateway(tmp_path, text, ENV) as second:
        after = credential(second, "zai", "a")["cooldowns"]
        assert [(c["until"], c["reason"]) for c in after] == [(c["until"], c["reason"]) for c in before]
        assert post(second, "pool-1").status_code == 200
    assert "a" not in seen(upstreams["pool"])  # the 5-hour block outlived the restart


def test_the_relay_hands_a_slow_stream_over_and_pings_through_silences(upstreams, tmp_path):
    """Held for its first real event at most a ping interval; then pings fill the gaps."""
    text = routes(upstreams["pool"], upstreams["backup"], upstreams["oai"])
    pieces = message_events("m")
    script(upstreams["pool"], a=Stream(pieces, delays=[0, 2.5, 0, 2.5] + [0] * len(pieces)))
    arrivals: list[tuple[float, str]] = []
    body = {"model": "pool-1", "max_tokens": 16, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with Gateway(tmp_path, text, ENV, ["--set", "modelmux_ping_interval=1"]) as gw:
        started = time.monotonic()
        with httpx.stream("POST", f"{gw.url}/v1/messages", json=body, timeout=15) as response:
            for line in response.iter_lines():
                if line.startswith("event: "):
                    arrivals.append((time.monotonic() - started, line.removeprefix("event: ")))
    names = [name for _, name in arrivals]
    assert names[0] == "message_start" and arrivals[0][0] < 2.0  # not held for the whole 2.5 s
    assert names[1] == "ping"
    assert names.count("ping") >= 3
    assert [n for n in names if n != "ping"] == [
        "message_start", "content_block_start", *["content_block_delta"] * 5, "content_block_stop",
        "message_delta", "message_stop"]


def test_an_attempts_record_holds_no_echoed_secret_while_its_flow_is_in_flight(upstreams, tmp_path):
    """The relay keeps each attempt's answer in the flow's notes, which mitmweb's export
    shows at once: an upstream that quotes the key it got, or the client's token, is
    kept scrubbed from the start, not only once the flow ends (scripts/notes_seen.py
    reads the notes as the answer begins)."""
    seen, client = tmp_path / "notes.jsonl", "sk-ant-oat01-client-login-in-notes-7777"
    upstreams["pool"].reply = echo(200)
    script(upstreams["pool"], a=echo(401))
    extra = ["-w", str(tmp_path / "flows.mitm"), "-s", str(SCRIPTS / "notes_seen.py")]
    with Gateway(tmp_path, routes(upstreams["pool"], upstreams["backup"], upstreams["oai"]),
                 {**ENV, "MODELMUX_TEST_NOTES": str(seen)}, extra) as gw:
        assert post(gw, "pool-1", authorization=f"Bearer {client}").status_code == 200
    notes = seen.read_text()
    assert "a\\u2026" in notes and "b\\u2026" in notes  # both attempts kept what they were answered, redacted
    assert [secret for secret in (KEYS["a"], KEYS["b"], client) if secret in notes] == []
