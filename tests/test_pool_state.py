"""What credential pools show and keep: status snapshot, reset, the state file, reloads."""

import json
import logging
import stat

import pytest
from pooling import Clock, fail, labels, ladder, load, pools_of, provider

from modelmux.pool_state import state_path
from modelmux.pools import Lease, Pools, Usage


def test_snapshot_of_a_small_pool():
    pools, clock = pools_of(provider("zai", "main: priority: 1", "spare: max_concurrent: 2, weight: 2"))
    lease = pools.pick("zai", "m")
    assert lease.credential.label == "spare"
    pools.record(lease, 200, usage=Usage(input_tokens=1200, output_tokens=300))
    fail(pools, "zai", "main", 429, headers={"retry-after": "20"})
    held = pools.pick("zai", "m")
    clock.advance(5)
    assert held.credential.label == "spare"
    assert pools.snapshot() == {
        "at": "2025-06-15T15:06:45Z",
        "providers": {
            "zai": {
                "strategy": "round-robin",
                "affinity": False,
                "cooldown_scope": "credential",
                "breaker": {"state": "closed", "until": None, "reason": None},
                "credentials": [
                    {
                        "label": "main", "key": "main…cret", "priority": 1, "weight": 1, "max_concurrent": None,
                        "state": "cooling",
                        "cooldowns": [{
                            "model": None, "kind": "rate_limit", "until": "2025-06-15T15:07:00Z", "seconds_left": 15.0,
                            "reason": "429: rate limited; the upstream said retry in 20 s", "status": 429, "firm": True,
                        }],
                        "in_flight": 0, "requests": 1, "errors": 1, "input_tokens": 0, "output_tokens": 0,
                        "last_status": 429,
                    },
                    {
                        "label": "spare", "key": "spare…cret", "priority": 1, "weight": 2, "max_concurrent": 2,
                        "state": "healthy", "cooldowns": [], "in_flight": 1, "requests": 1, "errors": 0,
                        "input_tokens": 1200, "output_tokens": 300, "last_status": 200,
                    },
                ],
            }
        },
        "without_credentials": {},
    }
    text = json.dumps(pools.snapshot())
    assert "key-zai-main-secret" not in text and "key-zai-spare-secret" not in text


def test_providers_without_credentials_have_no_pool():
    """Passthrough and `auth: none` providers are named as such, and nothing can be leased for them."""
    pools, _ = pools_of(provider("zai", "main"),
                        "  claude: {protocol: anthropic, base_url: 'https://a', auth: passthrough}\n"
                        "  ollama: {protocol: openai-chat, base_url: 'http://127.0.0.1:11434/v1', auth: none}\n")
    assert list(pools.pools) == ["zai"]
    assert pools.snapshot()["without_credentials"] == {"claude": "passthrough", "ollama": "none"}
    with pytest.raises(LookupError, match=r"provider 'ollama' has no credential pool \(pools: zai\)"):
        pools.pick("ollama", "qwen3")
    pools.reload(load("providers:\n" + provider("ollama", "main")))  # now with a key of its own
    assert (list(pools.pools), pools.snapshot()["without_credentials"]) == (["ollama"], {})


def test_reset():
    pools, clock = pools_of(provider("p", "a", "b"))
    assert ladder(pools, clock, 429, 2) == [5, 10]
    fail(pools, "p", "a", 401)
    pools.reset("p", "a")
    assert sorted(labels(pools, "p", 2)) == ["a", "b"]
    assert ladder(pools, clock, 429, 1) == [5]  # the backoff went too
    with pytest.raises(LookupError, match="provider 'p' has no credential 'c'; credentials: a, b"):
        pools.reset("p", "c")


def states(pools: Pools, name: str) -> list[tuple]:
    return [
        (c["label"], c["state"], [x["until"] for x in c["cooldowns"]], c["requests"], c["errors"],
         c["input_tokens"], c["output_tokens"], c["last_status"])
        for c in pools.snapshot()["providers"][name]["credentials"]
    ]


def test_state_survives_a_restart_with_real_expiries(tmp_path):
    routes = provider("zai", "a", "b", "c") + provider("kimi", "k")
    pools, _ = pools_of(routes)
    fail(pools, "zai", "a", 429, headers={"retry-after": "18000"})  # a 5-hour quota window
    fail(pools, "zai", "b", 503)  # 10 s
    pools.record(pools.pick("kimi", "m"), 200, usage=Usage(7, 3))
    path = state_path(tmp_path / "routes.yaml", {"MODELMUX_STATE_DIR": str(tmp_path / "state")})
    pools.save(path)
    assert path.parent == tmp_path / "state" and path.name.startswith("routes-") and path.name.endswith(".state.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    assert "key-" not in path.read_text()

    clock = Clock()
    clock.advance(60)  # the gateway comes back a minute later
    restarted = Pools(load("providers:\n" + routes), clock)
    restarted.load(path)
    assert states(restarted, "zai") == [
        ("a", "cooling", ["2025-06-15T20:06:40Z"], 1, 1, 0, 0, 429),
        ("b", "healthy", [], 1, 1, 0, 0, 503),
        ("c", "healthy", [], 0, 0, 0, 0, None),
    ]
    assert restarted.pools["zai"].slots[0].cooldowns == pools.pools["zai"].slots[0].cooldowns
    assert restarted.pools["zai"].slots[1].cooldowns == {}  # expired: dropped, backoff and all
    assert states(restarted, "kimi") == [("k", "healthy", [], 1, 0, 7, 3, 200)]
    clock.advance(18000 - 60)
    assert labels(restarted, "zai", 3) == ["a", "b", "c"]  # not kept a second past the real expiry


def test_loading_drops_removed_credentials_and_replaced_keys_cooldowns(tmp_path):
    pools, _ = pools_of(provider("zai", "a", "b"))
    fail(pools, "zai", "a", 401)
    fail(pools, "zai", "b", 401)
    path = tmp_path / "state.json"
    pools.save(path)
    restarted = Pools(load("providers:\n" + provider("zai", "b", "c", secret="rotated")), Clock())
    restarted.load(path)
    assert states(restarted, "zai") == [
        ("b", "healthy", [], 1, 1, 0, 0, 401),  # a new key: its counters, not the old key's block
        ("c", "healthy", [], 0, 0, 0, 0, None),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        '{"version": 2, "credentials": []}',
        '{"version": 1, "credentials": [{"provider": "zai", "label": "a"}]}',
        ('{"version": 1, "credentials": [{"provider": "zai", "label": "a", "fingerprint": "x", "requests": true, '
         '"errors": 0, "input_tokens": 0, "output_tokens": 0, "last_status": null, "cooldowns": []}]}'),
        ('{"version": 1, "credentials": [{"provider": "zai", "label": "a", "fingerprint": "x", "requests": 1, '
         '"errors": 0, "input_tokens": 0, "output_tokens": 0, "last_status": null, "cooldowns": '
         '[{"model": null, "kind": "success", "since": 0, "until": 9e12, "level": 0, "reason": "", "status": 200}]}]}'),
    ],
)
def test_an_unusable_state_file_is_ignored_with_a_warning(tmp_path, caplog, text):
    pools, _ = pools_of(provider("zai", "a"))
    fail(pools, "zai", "a", 429)
    path = tmp_path / "routes.state.json"
    path.write_text(text)
    with caplog.at_level(logging.WARNING):
        pools.load(path)
    assert len(caplog.messages) == 1
    assert caplog.messages[0].startswith(f"ignoring the credential state in {path}, which cannot be used (")
    assert caplog.messages[0].endswith("); starting afresh")
    assert states(pools, "zai") == [("a", "cooling", ["2025-06-15T15:06:45Z"], 1, 1, 0, 0, 429)]  # untouched


def test_a_missing_state_file_is_a_first_start(tmp_path, caplog):
    pools, _ = pools_of(provider("zai", "a"))
    pools.load(tmp_path / "nothing.json")
    assert caplog.messages == []


def test_reload_keeps_the_state_of_credentials_that_remain():
    pools, clock = pools_of(provider("zai", "a", "b", affinity=True), provider("kimi", "k"))
    assert labels(pools, "zai", 1, session="s-a") == ["a"]
    assert labels(pools, "zai", 1, session="s-b") == ["b"]
    held = pools.pick("zai", "m")
    assert held.credential.label == "a"
    fail(pools, "kimi", "k", 429, headers={"retry-after": "30"})
    fail(pools, "zai", "b", 429, headers={"retry-after": "30"})

    pools.reload(load("providers:\n" + provider("zai", "b", "c", affinity=True) + provider("kimi", "k")))
    assert states(pools, "zai") == [
        ("b", "cooling", ["2025-06-15T15:07:10Z"], 2, 1, 0, 0, 429),
        ("c", "healthy", [], 0, 0, 0, 0, None),
    ]
    assert states(pools, "kimi")[0][1] == "cooling"
    pools.record(held, 200)  # a lease of a removed credential ends harmlessly
    clock.advance(30)
    assert dict(pools.pools["zai"].sessions) == {("s-b", "m"): "b"}  # a's session is forgotten
    assert labels(pools, "zai", 3, session="s-b") == ["b", "b", "b"]


def test_a_replaced_key_starts_clean_even_with_old_leases_in_flight(caplog):
    pools, _ = pools_of(provider("zai", "a"))
    old = pools.pick("zai", "m")
    fail(pools, "zai", "a", 429)
    pools.reload(load("providers:\n" + provider("zai", "a", secret="rotated")))
    assert pools.record(old, 401).cooldown is None  # the old key's refusal says nothing of the new one
    lease = pools.pick("zai", "m")
    assert isinstance(lease, Lease) and lease.credential.key == "key-zai-a-rotated"
    assert states(pools, "zai") == [("a", "healthy", [], 2, 2, 0, 0, 401)]
    assert pools.snapshot()["providers"]["zai"]["credentials"][0]["in_flight"] == 1
