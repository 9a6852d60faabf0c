"""The gateway's own files end to end, with the real gateway: a state file and a usage
file with bad parts cost only those parts, and the problem is in the log once, in
/healthz and in `modelmux status`; a gateway killed with SIGKILL mid-traffic loses no
more than docs/credentials.md and docs/usage.md promise."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway import Gateway
from pooling import fail
from upstream import Behaviour, Received, Reply, Upstream, anthropic_like

from modelmux import usage
from modelmux.cli import main as cli
from modelmux.config import loader
from modelmux.credentials import state_file
from modelmux.credentials.pools import Pools

KEYS = {"a": "key-zai-a-3f1e", "b": "key-zai-b-8c2d", "k": "key-kimi-k-5a7b"}
SECRET = "sk-ant-api03-hand-edited-secret"  # what a hand edit put where a counter belongs


def routes(upstream: Upstream) -> str:
    return f"""
providers:
  zai:
    protocol: anthropic
    base_url: "{upstream.url}"
    credentials: [{{label: a, key: {KEYS["a"]}}}, {{label: b, key: {KEYS["b"]}}}]
  kimi: {{protocol: anthropic, base_url: "{upstream.url}", credentials: [{{label: k, key: {KEYS["k"]}}}]}}
routes:
  - {{match: "limit-*", provider: kimi}}
default: {{provider: zai}}
"""


def limited(request: Received) -> Behaviour:
    """kimi's key is rate limited for an hour; everything else answers like Anthropic."""
    if request.headers.get("x-api-key") == KEYS["k"]:
        body = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
        return Reply(429, json.dumps(body).encode(), {"content-type": "application/json", "retry-after": "3600"})
    return anthropic_like(request)


@pytest.fixture
def upstream() -> Any:
    with Upstream() as server:
        server.reply = limited
        yield server


def ask(gateway: Gateway, model: str) -> httpx.Response:
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{gateway.url}/v1/messages", json=body, timeout=10)


def spoiled_state(gateway: Gateway) -> bytes:
    """A state file where a is rate limited for an hour after 3 requests, and b's entry
    has a secret where its request count belongs."""
    pools = Pools(loader.load(gateway.config, {}))
    for _ in range(2):
        fail(pools, "zai", "a", 200)
    fail(pools, "zai", "a", 429, headers={"retry-after": "3600"})
    fail(pools, "zai", "b", 200)
    document = json.loads(pools.dump())
    document["credentials"][1]["requests"] = SECRET
    data = json.dumps(document, indent=1).encode()
    path = gateway.state_file(state_file.SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def test_bad_state_costs_only_its_bad_parts_and_is_reported_where_people_look(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = Gateway(tmp_path, routes(upstream))
    state, records = gateway.state_file(state_file.SUFFIX), gateway.state_file(usage.SUFFIX)
    original = spoiled_state(gateway)
    good = usage.Record.of_summary({"time": time.time(), "provider": "zai", "credential": "a", "status": 200})
    records.write_text(good.line() + '{"v": 1, "time": "' + SECRET + '"}\n' + good.line())
    problems = [
        {"file": str(state), "problem": "skipped 1 of 3 credential entries that could not be used: credentials[1] "
         "(zai/b): requests is not a whole number", "kept": "2 of 3 credential entries",
         "set_aside": f"{state}.corrupt"},
        {"file": str(records), "problem": f"1 line is not a usage record, skipped (the first: {records} line 2: time "
         "is not a number ≥ 0)", "kept": "2 records", "set_aside": None},
    ]  # fmt: skip
    with gateway:
        assert gateway.health()["file_problems"] == problems
        zai = gateway.credentials()["providers"]["zai"]["credentials"]
        assert [(c["label"], c["state"], c["requests"], c["errors"]) for c in zai] == [
            ("a", "cooling", 3, 1),  # kept, with its cooldown
            ("b", "healthy", 0, 0),  # skipped: starts afresh
        ]
        assert httpx.get(f"{gateway.url}/modelmux/usage?days=1", timeout=5).json()["total"]["requests"] == 2

        monkeypatch.setenv("MODELMUX_STATE_DIR", str(tmp_path / "state"))
        assert cli.main(["status", "--config", str(gateway.config), "--port", str(gateway.port)]) == 0
        out = capsys.readouterr().out.splitlines()
        start = out.index("problems with its files:")
        assert out[start + 1 : start + 3] == [
            f"  {state}: skipped 1 of 3 credential entries that could not be used: credentials[1] (zai/b): requests "
            f"is not a whole number; kept 2 of 3 credential entries; the original is in {state}.corrupt",
            f"  {records}: 1 line is not a usage record, skipped (the first: {records} line 2: time is not a number "
            "≥ 0); kept 2 records",
        ]  # fmt: skip
        assert out[start + 3].startswith("credentials at ")  # then the credentials, as before
        cli.main(["status", "--json", "--config", str(gateway.config), "--port", str(gateway.port)])
        assert json.loads(capsys.readouterr().out)["file_problems"] == problems

        assert ask(gateway, "glm-4.6").status_code == 200
        deadline = time.monotonic() + 10
        while state.read_bytes() == original and time.monotonic() < deadline:
            time.sleep(0.05)  # the next save (within a second) rewrites the file with what was kept
        assert state_file.read(state).problem is None
        assert gateway.health()["file_problems"] == problems  # still said: it is what this start found
    assert (tmp_path / "state" / f"{state.name}.corrupt").read_bytes() == original
    log = gateway.log.read_text()
    for problem in problems:
        assert log.count(f"{problem['file']}: {problem['problem']}") == 1  # in the log once
    assert SECRET not in log + json.dumps(problems) + "\n".join(out)
    assert not [key for key in KEYS.values() if key in state.read_text()]


# -- what a kill -9 loses ---------------------------------------------------------------

# The bound docs/credentials.md and docs/usage.md state: a SIGKILL loses at most the
# counters and usage records of the last second. MARGIN covers an append's or a save's
# own time and a busy event loop's lateness. The counters' old 5 s interval fails this.
BOUND = 1.0
MARGIN = 0.4
TRAFFIC = 3.0  # seconds of traffic before the kill, plus up to one more: the writers tick
# once a second from the gateway's start, so a fixed moment would test one phase only.


@dataclass
class Sent:
    model: str  # unique per request: its usage record says which it was
    done: float | None = None  # monotonic time the client had the whole answer; None: it never did


def traffic(gateway: Gateway, sent: list[Sent], stop: threading.Event) -> None:
    """One client sending unique requests until `stop`, a few dozen a second."""
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        while not stop.is_set():
            request = Sent(f"glm-{len(sent)}-{threading.get_ident()}")
            sent.append(request)
            body = {"model": request.model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
            try:
                if client.post("/v1/messages", json=body).status_code == 200:
                    request.done = time.monotonic()
            except httpx.HTTPError:
                return  # the gateway was killed
            time.sleep(0.01)


def kill_mid_traffic(gateway: Gateway) -> tuple[list[Sent], float]:
    """Traffic from 4 clients for TRAFFIC seconds, then SIGKILL while it flows."""
    sent: list[Sent] = []
    stop = threading.Event()
    clients = [threading.Thread(target=traffic, args=(gateway, sent, stop)) for _ in range(4)]
    for client in clients:
        client.start()
    time.sleep(TRAFFIC + random.random())
    assert gateway.process is not None
    killed = time.monotonic()
    gateway.process.send_signal(signal.SIGKILL)
    stop.set()
    for client in clients:
        client.join()
    gateway.process.wait()
    return sent, killed


def test_a_sigkill_mid_traffic_loses_no_more_than_the_documented_second(upstream: Upstream, tmp_path: Path) -> None:
    gateway = Gateway(tmp_path, routes(upstream)).start()
    sent, killed = kill_mid_traffic(gateway)
    answered = [s for s in sent if s.done is not None]
    before_bound = {s.model for s in answered if s.done <= killed - BOUND - MARGIN}
    assert len(before_bound) >= 5  # the test saw real traffic (a few dozen a second, fewer on a busy machine)

    # Usage records: every request answered more than a second before the kill is in the
    # file; only what the gateway itself saw is. A kill mid-append may cut the last line.
    records_file = gateway.state_file(usage.SUFFIX)
    assert records_file.exists(), "not one usage record was written before the kill"
    text = records_file.read_text()
    file = usage.UsageFile(records_file)
    recorded = {r.requested_model for r in file.records()}
    assert before_bound <= recorded <= {s.model for s in sent}
    assert file.skipped == (0 if text.endswith("\n") else 1)

    # Counters: those of every request answered more than a second before the kill.
    state = gateway.state_file(state_file.SUFFIX)
    assert state.exists(), "the counters were never saved before the kill"
    saved = {(e.provider, e.label): e for e in state_file.read(state).entries}
    zai = saved[("zai", "a")].requests + saved[("zai", "b")].requests
    assert len(before_bound) <= zai <= len(sent)
    assert saved[("zai", "a")].input_tokens == 12 * saved[("zai", "a")].requests  # one consistent save

    # Restarted on what survived: the counts go on from there, and a cut line is reported.
    with Gateway(tmp_path, routes(upstream)) as restarted:
        report = httpx.get(f"{restarted.url}/modelmux/usage?days=1", timeout=5).json()
        assert report["total"]["requests"] == len(recorded)
        pools = restarted.credentials()["providers"]["zai"]["credentials"]
        assert sum(c["requests"] for c in pools) == zai
        cut = [] if text.endswith("\n") else [{
            "file": str(records_file), "problem": f"1 line is not a usage record, skipped (the first: {records_file} "
            f"line {len(text.splitlines())}: not JSON)", "kept": f"{len(recorded)} records", "set_aside": None,
        }]  # fmt: skip
        assert restarted.health()["file_problems"] == cut


def test_a_cooldown_is_saved_at_once_and_survives_a_sigkill(upstream: Upstream, tmp_path: Path) -> None:
    """A rate limit's cooldown is written as soon as it is set (docs/credentials.md): a
    kill 0.2 s later does not make the restarted gateway ask the limited key again."""
    with Gateway(tmp_path, routes(upstream)) as gateway:
        assert ask(gateway, "glm-4.6").status_code == 200  # some traffic before
        limited_at = time.time()
        assert ask(gateway, "limit-1").status_code == 429
        time.sleep(0.2)
        assert gateway.process is not None
        gateway.process.send_signal(signal.SIGKILL)
        gateway.process.wait()
    with Gateway(tmp_path, routes(upstream)) as restarted:
        kimi = restarted.credentials()["providers"]["kimi"]["credentials"][0]
        assert (kimi["state"], kimi["requests"], kimi["errors"], kimi["last_status"]) == ("cooling", 1, 1, 429)
        assert limited_at + 3600 - 5 < time.time() + kimi["cooldowns"][0]["seconds_left"] <= time.time() + 3600
        asked = len(upstream.received)
        answer = ask(restarted, "limit-2")
        assert (answer.status_code, len(upstream.received)) == (429, asked)  # refused by the gateway itself
