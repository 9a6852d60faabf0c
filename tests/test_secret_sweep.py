"""The end-to-end secret sweep (issue 17): every kind of secret modelmux holds goes
through the gateway, to upstreams that echo every credential they get, and then every
artefact a person or a client can read is searched for every one of them.

The secrets: provider keys of each protocol, a pool of three keys, a route's fallback
provider, a key typed into routes.yaml and keys from `${VAR}`, secrets in providers'
`headers:` (from `${VAR}`, and typed under a credential-named header) and `query:`,
the gateway's `server.api_key`, the client's own login and API key (passed through to
Anthropic), and a subscription login's tokens, before and after a refresh.

The traffic, on each send path (`mitmproxy`: single-key routes mitmproxy sends itself;
`relay`: pools, fallbacks and logins the failover relay sends): whole answers and
streams, 400/401/429/500 answers, a stream that fails midway, failover from key to key
and from provider to fallback, count_tokens and the local endpoints, and requests held
by a slow upstream before its first byte while mitmweb's API is polled and its
websocket push is read. All of it under mitmweb (with `-w` and `--record`) and under
plain mitmdump (flows not kept: the client must get the same scrubbed bytes).

The artefacts: every client answer (status, headers, body), the gateway's log, every
file in its state directory, the `-w` file and the recording, mitmweb's API and its
websocket messages, `modelmux status` and `modelmux check`. A secret shows if all of
it, or 12 characters of its start, middle or end, is there (leaks.fragments)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from browser import WAIT
from echoing import CLAUDE_CODE_HEADERS, echoed, model_of, what_it_got
from gateway import Gateway, all_running
from leaks import Leak, Poller, Updates, describe, find_leaks, finished_flows, flows_in, mitmweb_surfaces
from test_oauth_gateway import TokenEndpoint
from upstream import Behaviour, Received, Stream, Upstream, message, sse

from modelmux.oauth import tokens
from modelmux.oauth.tokens import Token

MODELMUX = Path(sys.executable).parent / "modelmux"
# Each secret has a distinctive middle, so any run of it found is a leak, never a
# coincidence; their last four characters are what their redacted forms show.
SECRETS = {
    "chat key": "sk-proj-chat-Qm7Rw2Xk9Lp4Tz8Vb3Nc-1101",  # ${CHAT_KEY}; one key, openai-chat
    "chat query": "sig-chat-qry-Fr5Gt8Hy1Ju4Ki7Lo2Pa-1111",  # providers.chat.query from ${CHAT_SIG}
    "gemini key typed in routes.yaml": "lit-gem-key-Hs5Jd8Fg2Kq6Wn9Ye4Ua-2202",  # gemini: x-goog-api-key
    "vendor key": "vk-vend-key-Pz3Lx7Cv1Bn5Mq9Rt2Ws-3303",  # ${VENDOR_KEY}; Anthropic-compatible
    "vendor header": "org-secret-Gy6Hu1Ji4Ko8Lp3Zx7Cv-4404",  # providers.vend.headers from ${TENANT_TOKEN}
    "gemini header typed in routes.yaml": "hdr-gem-key-Vb4Nm7Qw1Er5Ty8Ui2Op-2212",  # providers.gem.headers.api-key
    "pool-a": "sk-pool-aaa-Wd2Ef5Rg8Th1Yj4Uk7Il-5505",  # openai-responses, three keys
    "pool-b": "sk-pool-bbb-Xc3Vb6Nm9Qa2Ws5Ed8Rf-5506",
    "pool-c": "sk-pool-ccc-Ty4Gh7Ju1Ik3Ol6Pz9Ax-5507",
    "pool query": "sig-pool-qry-Dx6Cf9Vg2Bh5Nj8Mk1Lo-5515",  # providers.pool.query from ${POOL_SIG}
    "primary key": "sk-prim-key-Sc2Dv5Fb8Gn1Hm4Jk7Lq-6606",  # openai-chat, with a fallback: the relay
    "primary header": "hdr-prim-Kq2Wl5Er8Ty1Ui4Op7As-6616",  # providers.primary.headers from ${ORG_TOKEN}
    "fallback key": "fb-spare-key-Ew3Rt6Yu9Io2Pa5Sd8F-7707",  # the fallback provider (gemini)
    "fallback header typed in routes.yaml": "hdr-spare-Jk3Lz6Xc9Vb2Nm5Qw8E-7717",  # providers.spare.headers.api-key
    "gateway key": "mm-gw-key-Zq8Xw1Ce4Vr7Bt2Ny5Mu-8808",  # server.api_key from ${GATEWAY_KEY}
    "client login": "sk-ant-oat01-cli-Lk9Jh2Gf5Ds8Ap3Oi6Uy-9909",  # passed through to Anthropic
    "client api key": "sk-ant-api03-cli-Mn4Bv7Cx1Zl5Kj8Hg2Fd-9910",
    "login access token": "at-sweep-old-Qa1Ws4Ed7Rf2Tg5Yh8Uj-0011",  # a Claude subscription login
    "login refresh token": "rt-initial-aaaaaaaaaaaa",  # TokenEndpoint's first
}
ENV = {"CHAT_KEY": SECRETS["chat key"], "CHAT_SIG": SECRETS["chat query"], "POOL_SIG": SECRETS["pool query"],
       "VENDOR_KEY": SECRETS["vendor key"], "TENANT_TOKEN": SECRETS["vendor header"],
       "POOL_A": SECRETS["pool-a"], "POOL_B": SECRETS["pool-b"], "POOL_C": SECRETS["pool-c"],
       "PRIMARY_KEY": SECRETS["primary key"], "ORG_TOKEN": SECRETS["primary header"],
       "FALLBACK_KEY": SECRETS["fallback key"],
       "GATEWAY_KEY": SECRETS["gateway key"]}


def routes(url: str, login: Path) -> str:
    return f"""
server:
  api_key: "${{GATEWAY_KEY}}"
providers:
  chat:
    protocol: openai-chat
    base_url: "{url}/chat/v1"
    credentials: [{{label: chat-main, key: "${{CHAT_KEY}}"}}]
    query: {{sig: "${{CHAT_SIG}}"}}
    models: [chat-ok]
  gem:
    protocol: gemini
    base_url: "{url}/gem/v1beta"
    credentials: [{{label: gem-main, key: "{SECRETS['gemini key typed in routes.yaml']}"}}]
    headers: {{api-key: "{SECRETS['gemini header typed in routes.yaml']}"}}
    models: [gem-ok]
  vend:
    protocol: anthropic
    base_url: "{url}/vend"
    credentials: [{{label: vend-main, key: "${{VENDOR_KEY}}"}}]
    headers: {{x-tenant-token: "${{TENANT_TOKEN}}"}}
    models: [vend-ok]
  mine: {{protocol: anthropic, base_url: "{url}/mine", auth: passthrough}}
  pool:
    protocol: openai-responses
    base_url: "{url}/pool/v1"
    strategy: fill-first
    query: {{sig: "${{POOL_SIG}}"}}
    credentials:
      - {{label: pool-a, key: "${{POOL_A}}"}}
      - {{label: pool-b, key: "${{POOL_B}}"}}
      - {{label: pool-c, key: "${{POOL_C}}"}}
  primary:
    protocol: openai-chat
    base_url: "{url}/primary/v1"
    credentials: [{{label: primary-main, key: "${{PRIMARY_KEY}}"}}]
    headers: {{x-org-token: "${{ORG_TOKEN}}"}}
  spare:
    protocol: gemini
    base_url: "{url}/spare/v1beta"
    credentials: [{{label: spare-main, key: "${{FALLBACK_KEY}}"}}]
    headers: {{api-key: "{SECRETS['fallback header typed in routes.yaml']}"}}
  mine2: {{protocol: anthropic, base_url: "{url}/mine2", auth: passthrough}}
  sub:
    protocol: anthropic
    base_url: "{url}/sub"
    credentials: [{{label: max, oauth: "{login}"}}]
routes:
  - {{match: "chat-*", provider: chat}}
  - {{match: "gem-*", provider: gem}}
  - {{match: "vend-*", provider: vend}}
  - {{match: "mine-*", provider: mine}}
  - {{match: "pool-*", provider: pool}}
  - {{match: "fb-*", provider: primary, fallback: [spare]}}
  - {{match: "minefb-*", provider: mine, fallback: [mine2]}}
  - {{match: "sub-*", provider: sub}}
default: null
"""


# -- the upstream ---------------------------------------------------------------------

class Echoing:
    """One fake upstream for every provider, which echoes every credential it gets
    (echoing.echoed). What it answers is in the model's name, after the route's prefix:
    `ok`; a status (`400`, `401`, `429`, `500`); `midstream`, a stream that fails after
    it began; `failover`, a failure for every attempt but the last its route makes;
    `slow`, the answer only once `held` is set. `/token/NAME` is a login's token
    endpoint, and a GET (a model list `modelmux check` asks for) is refused, echoing."""

    def __init__(self, server: Upstream) -> None:
        self.server = server
        self.held = threading.Event()
        self.endpoints: dict[str, TokenEndpoint] = {}
        server.reply = self.reply

    def token_url(self, name: str) -> str:
        self.endpoints[name] = TokenEndpoint()
        return f"{self.server.url}/token/{name}"

    def reply(self, request: Received) -> Behaviour:
        if request.path.startswith("/token/"):
            return self.endpoints[request.path.removeprefix("/token/")](request)
        if request.method == "GET":
            return echoed(request, 401)
        what = model_of(request).partition("-")[2]
        if what == "slow":
            self.held.wait(WAIT)
        if what.isdigit():
            answer = echoed(request, int(what))
            if what == "429":
                answer.headers["retry-after"] = "1"
            return answer
        if what == "midstream":
            return midstream(request)
        if what == "failover" and not last_attempt(request):
            return echoed(request, failure_status(request))
        return echoed(request, 200, request.json().get("stream") or "streamGenerateContent" in request.path)

    def received(self) -> str:
        """Everything the upstreams got, token endpoints included."""
        return "\n".join(f"{r.path} {r.headers} {r.body.decode(errors='replace')}" for r in self.server.received)


def last_attempt(request: Received) -> bool:
    """Whether this is the attempt a `-failover` request's route ends with: the pool's
    third key, the fallback provider, or the login after its refresh."""
    sent = str(request.headers)
    return (SECRETS["pool-c"] in sent or request.path.startswith(("/spare/", "/mine2/"))
            or (request.path.startswith("/sub/") and SECRETS["login access token"] not in sent))


def failure_status(request: Received) -> int:
    """How a `-failover` attempt fails: the pool's first key is rate limited and its
    second refused, a login's old token is refused, a provider with a fallback fails."""
    if request.path.startswith("/pool/"):
        return 429 if SECRETS["pool-a"] in str(request.headers) else 401
    return 401 if request.path.startswith("/sub/") else 500


def midstream(request: Received) -> Behaviour:
    """An Anthropic stream that begins, then fails with an error quoting what it got."""
    start = {"type": "message_start", "message": {**message(model_of(request), ""), "content": []}}
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "so far "}}
    error = {"type": "error", "error": {"type": "overloaded_error", "message": what_it_got(request)}}
    return Stream([sse("message_start", start), sse("content_block_start", block),
                   sse("content_block_delta", delta), sse("error", error)])


# -- the traffic ----------------------------------------------------------------------

# (model, streamed) per kind of route: every answer kind on each, each echoing what it got.
# "mitmproxy": routes with a single upstream, whose streams mitmproxy sends and whose
# JSON answers the relay's last request hook sends; "relay": pools and fallbacks.
TRAFFIC = {
    "mitmproxy": [
        ("chat-ok", False), ("chat-ok", True), ("chat-400", False), ("chat-401", False), ("chat-429", True),
        ("chat-500", False), ("gem-ok", False), ("gem-ok", True), ("gem-401", False), ("gem-429", False),
        ("gem-500", True), ("vend-ok", False), ("vend-ok", True), ("vend-400", True), ("vend-401", False),
        ("vend-429", False), ("vend-500", False), ("vend-midstream", True), ("mine-ok", False), ("mine-ok", True),
        ("mine-401", False), ("mine-429", True), ("mine-500", False), ("mine-midstream", True),
    ],
    "relay": [
        ("pool-ok", False), ("pool-ok", True), ("pool-failover", False), ("pool-failover", True), ("pool-400", False),
        ("pool-429", True), ("pool-500", False), ("fb-ok", False), ("fb-failover", False), ("fb-failover", True),
        ("fb-401", False), ("minefb-ok", False), ("minefb-ok", True), ("minefb-failover", True), ("minefb-401", False),
        ("minefb-midstream", True), ("sub-ok", True), ("sub-failover", False), ("sub-429", False),
        ("sub-midstream", True),
    ],
}
COUNTED = {"mitmproxy": ["chat-ok", "vend-ok", "mine-ok"], "relay": ["pool-ok", "minefb-ok", "sub-ok"]}
# Held by the slow upstream before its first byte, while mitmweb is polled: (model, streamed).
IN_FLIGHT = {
    "mitmproxy": [("chat-slow", True), ("gem-slow", False), ("vend-slow", True), ("mine-slow", False)],
    "relay": [("pool-slow", True), ("fb-slow", False), ("minefb-slow", True), ("sub-slow", False)],
}
# The secrets each path's upstreams must have got (so that they had something to echo).
IN_PLAY = {
    "mitmproxy": ["chat key", "chat query", "gemini key typed in routes.yaml", "gemini header typed in routes.yaml", "vendor key",
                  "vendor header", "client login", "client api key"],
    "relay": ["pool-a", "pool-b", "pool-c", "pool query", "primary key", "primary header", "fallback key",
              "fallback header typed in routes.yaml", "client login", "client api key", "login access token",
              "login refresh token"],
}
HI = [{"role": "user", "content": "hi"}]


class Client:
    """Claude Code's side: its headers, its own login and API key, and the gateway key;
    every answer it gets is kept, whole, as an artefact."""

    def __init__(self, gateway: Gateway, name: str) -> None:
        self.gateway = gateway
        self.name = name
        self.answers: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def headers(self, **changes: str | None) -> dict[str, str]:
        headers = {**CLAUDE_CODE_HEADERS, "authorization": f"Bearer {SECRETS['client login']}",
                   "x-api-key": SECRETS["client api key"], "x-modelmux-key": SECRETS["gateway key"], **changes}
        return {name: value for name, value in headers.items() if value is not None}

    def send(self, method: str, path: str, body: object = None, what: str = "", **changes: str | None) -> httpx.Response:
        response = httpx.request(method, f"{self.gateway.url}{path}", json=body, headers=self.headers(**changes),
                                 timeout=WAIT)
        head = "\n".join(f"{n}: {v}" for n, v in response.headers.multi_items())
        with self.lock:
            key = f"{self.name}'s answer to {method} {path} {what}".rstrip()
            key += f" #{sum(k.startswith(key) for k in self.answers) + 1}"
            self.answers[key] = f"HTTP {response.status_code}\n{head}\n\n".encode() + response.content
        return response

    def ask(self, model: str, stream: bool, **changes: str | None) -> httpx.Response:
        body = {"model": model, "max_tokens": 32, "stream": stream, "messages": HI}
        return self.send("POST", "/v1/messages?beta=true", body, model + (" (streamed)" if stream else ""), **changes)

    def reset(self) -> None:
        """Every cooldown cleared, so that the next request is sent, not refused here."""
        assert self.send("POST", "/modelmux/credentials/reset", {}).status_code == 200


def run_traffic(client: Client, path: str) -> None:
    for model, stream in TRAFFIC[path]:
        client.ask(model, stream)
        if model.endswith(("401", "429", "failover")):
            client.reset()  # the key cooled down: the next request would be refused here
    for model in COUNTED[path]:
        client.send("POST", "/v1/messages/count_tokens", {"model": model, "messages": HI}, model)
    # The gateway key in Authorization (its scheme in lower case) beside the client's API key.
    client.ask(COUNTED[path][1], False, authorization=f"bearer {SECRETS['gateway key']}", **{"x-modelmux-key": None})
    client.ask(COUNTED[path][0], False, **{"x-modelmux-key": None})  # no gateway key: refused
    client.ask(COUNTED[path][0], False, **{"x-modelmux-key": SECRETS["client login"]})  # a wrong one
    for local in ("/healthz", "/v1/models", "/modelmux/credentials", "/modelmux/usage"):
        client.send("GET", local)
    client.send("GET", "/healthz", what="without the gateway key",
                **{"x-modelmux-key": None, "authorization": None, "x-api-key": None})


def hold_in_flight(client: Client, echoing: Echoing, path: str) -> tuple[dict[str, bytes], list[Leak]]:
    """Requests held by the slow upstream before their first byte, while mitmweb's API is
    polled: what it showed then, and what the poller found. The requests end after."""
    gateway, server = client.gateway, echoing.server
    poller = Poller(gateway, all_secrets(echoing))
    senders = [threading.Thread(target=client.ask, args=held, daemon=True) for held in IN_FLIGHT[path]]
    for sender in senders:
        sender.start()
    deadline = time.monotonic() + WAIT
    while sum(model_of(r).endswith("-slow") for r in server.received) < len(senders):
        assert time.monotonic() < deadline, "the held requests never reached the upstream"
        time.sleep(0.02)
    waiting = [flow for flow in gateway.web_api("/flows").json() if flow.get("response") is None]
    assert len(waiting) >= len(senders)
    shown = {f"{where} (requests in flight)": data for where, data in mitmweb_surfaces(gateway, waiting, ["auto"])}
    poller.wait(3)
    echoing.held.set()
    for sender in senders:
        sender.join(WAIT)
    return shown, poller.stop()


def all_secrets(echoing: Echoing) -> dict[str, str]:
    """SECRETS and the tokens the logins' refreshes handed out so far."""
    found = dict(SECRETS)
    for name, endpoint in echoing.endpoints.items():
        for n in range(1, endpoint.issued + 1):
            found[f"login access token, refresh {n} ({name})"] = f"at-fresh-{n:04d}-cccccccccccc"
            found[f"login refresh token, refresh {n} ({name})"] = f"rt-rotated-{n:04d}-bbbbbbbb"
    return found


def command(gateway: Gateway, *args: str) -> bytes:
    """What a `modelmux` command prints, stdout and stderr, run as a user would."""
    done = subprocess.run([str(MODELMUX), *args, "--config", str(gateway.config)], capture_output=True,
                          env=gateway.env, timeout=60)
    return done.stdout + b"\n" + done.stderr


def files_of(gateway: Gateway, *more: Path) -> dict[str, bytes]:
    """The gateway's log, every file in its state directory, and `more`."""
    state = Path(gateway.env["MODELMUX_STATE_DIR"])
    found = {"the gateway's log (stdout and stderr)": gateway.log.read_bytes()}
    found.update({f"the state file {p.relative_to(state)}": p.read_bytes() for p in sorted(state.rglob("*")) if p.is_file()})
    found.update({f"{p.name}": p.read_bytes() for p in more})
    return {f"{name} ({'mitmweb' if gateway.web else 'mitmdump'})": data for name, data in found.items()}


# -- the sweep ------------------------------------------------------------------------

@pytest.fixture
def echoing() -> Iterator[Echoing]:
    with Upstream() as server:
        fake = Echoing(server)
        yield fake
        fake.held.set()


def gateway_in(directory: Path, echoing: Echoing, extra: list[str] | None = None, web: bool = False) -> Gateway:
    """A gateway on routes() with its own login, whose refreshes are its own."""
    directory.mkdir()
    login = directory / "login.json"
    tokens.write(login, Token(kind="claude", access_token=SECRETS["login access token"],
                              refresh_token=SECRETS["login refresh token"], expires_at=time.time() + 3600,
                              email="max@example.com", token_url=echoing.token_url(directory.name)))
    return Gateway(directory, routes(echoing.server.url, login), ENV, extra, web=web)


@pytest.mark.parametrize("path", ["mitmproxy", "relay"])
def test_no_secret_shows_in_any_artefact(tmp_path: Path, echoing: Echoing, path: str) -> None:
    saved, recorded = tmp_path / "flows.mitm", tmp_path / "recorded.mitm"
    web = gateway_in(tmp_path / "mitmweb", echoing, ["-w", str(saved), "--set", f"modelmux_record={recorded}"], web=True)
    dump = gateway_in(tmp_path / "mitmdump", echoing)  # flows not kept: nothing is scrubbed for a record
    with ThreadPoolExecutor(4) as pool:
        checks = {f"modelmux {' '.join(args)}": pool.submit(command, web, *args) for args in (("check",), ("check", "--json"))}
        with all_running(web, dump):
            updates = Updates(web)
            clients = [Client(web, "mitmweb"), Client(dump, "mitmdump")]
            for sent in [pool.submit(run_traffic, client, path) for client in clients]:
                sent.result()
            shown, polled = hold_in_flight(clients[0], echoing, path)
            flows = finished_flows(web, len(clients[0].answers))
            routed = [flow for flow in flows if "/modelmux/" not in flow["request"]["path"]]
            shown.update(mitmweb_surfaces(web, routed, ["auto", "modelmux"]))
            shown["mitmweb's websocket push (/updates)"] = updates.close()
            for args in (("status",), ("status", "--json")):
                shown[f"modelmux {' '.join(args)}"] = command(web, *args, "--port", str(web.port))
        shown.update({name: check.result() for name, check in checks.items()})
    for client in clients:
        shown.update(client.answers)
    shown.update(files_of(web, saved, recorded))
    shown.update(files_of(dump))
    assert len(flows_in(saved)) >= len(clients[0].answers) and len(flows_in(recorded)) >= len(TRAFFIC[path])

    secrets = all_secrets(echoing)
    leaks = polled + find_leaks(shown, secrets)
    assert not leaks, describe(leaks)

    # Every secret was in play: the upstreams got each one, the gateway key excepted
    # (none may ever get it), and the client got their echoes, redacted.
    received = echoing.received()
    assert [name for name in IN_PLAY[path] if secrets[name] not in received] == []
    assert find_leaks({"what the upstreams got": received.encode()}, {"gateway key": secrets["gateway key"]}) == []
    answers = b"\n".join(clients[0].answers.values()).decode(errors="replace")
    assert answers.count("…") > 20, "the upstream's echoes should reach the client, redacted"


def test_a_leak_is_reported_where_it_is_without_the_secret():
    """The search finds a secret whole, or a run of it a cut-off log line leaves, and its
    report names the secret and the artefact and shows the text around it, masked."""
    key, login = SECRETS["chat key"], SECRETS["client login"]
    artefacts = {f"a log naming {key}": f"attempt failed: you sent Bearer {key}; x-api-key: {login[:30]}".encode(),
                 "a clean file": "chat-main…1101 and client login…9909".encode()}
    leaks = find_leaks(artefacts, SECRETS)
    assert [(leak.secret, leak.part) for leak in leaks] == [
        ("chat key", "the whole secret"), ("client login", "12 characters of its start")]
    report = describe(leaks)
    assert "a log naming ‹chat key…1101›" in report and "you sent Bearer ‹chat key…1101›; x-api-key: ‹client login…9909›" in report
    assert not [name for name, value in SECRETS.items() if any(value[i:i + 8] in report for i in range(len(value) - 7))]
