"""What credential pools show and keep: status snapshot, reset, the state file, reloads."""

import errno
import json
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy.test import taddons
from pooling import Clock, fail, labels, ladder, load, pools_of, provider

from modelmux.addons.credentials import Credentials
from modelmux.addons.dashboard import Dashboard
from modelmux.addons.settings import Settings
from modelmux.config.file_problems import FileProblem
from modelmux.credentials import snapshot, state_file
from modelmux.credentials.pools import Lease, Pools, Usage
from modelmux.credentials.state_file import NOTHING, state_path


def test_snapshot_of_a_small_pool():
    pools, clock = pools_of(provider("zai", "main: priority: 1", "spare: max_concurrent: 2, weight: 2"))
    lease = pools.pick("zai", "m")
    assert lease.credential.label == "spare"
    pools.record(lease, 200, usage=Usage(input_tokens=1200, output_tokens=300))
    fail(pools, "zai", "main", 429, headers={"retry-after": "20"})
    held = pools.pick("zai", "m")
    clock.advance(5)
    assert held.credential.label == "spare"
    assert snapshot.snapshot(pools) == {
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
                        "last_status": 429, "quota": None,  # no answer named one (test_quota.py)
                    },
                    {
                        "label": "spare", "key": "spare…cret", "priority": 1, "weight": 2, "max_concurrent": 2,
                        "state": "healthy", "cooldowns": [], "in_flight": 1, "requests": 1, "errors": 0,
                        "input_tokens": 1200, "output_tokens": 300, "last_status": 200, "quota": None,
                    },
                ],
            }
        },
        "without_credentials": {},
        "client_logins": [],  # none heard on passthrough (test_quota.py)
    }
    text = json.dumps(snapshot.snapshot(pools))
    assert "key-zai-main-secret" not in text and "key-zai-spare-secret" not in text


def test_providers_without_credentials_have_no_pool():
    """Passthrough and `auth: none` providers are named as such, and nothing can be leased for them."""
    pools, _ = pools_of(provider("zai", "main"),
                        "  claude: {protocol: anthropic, base_url: 'https://a', auth: passthrough}\n"
                        "  ollama: {protocol: openai-chat, base_url: 'http://127.0.0.1:11434/v1', auth: none}\n")
    assert list(pools.pools) == ["zai"]
    assert snapshot.snapshot(pools)["without_credentials"] == {"claude": "passthrough", "ollama": "none"}
    with pytest.raises(LookupError, match=r"provider 'ollama' has no credential pool \(pools: zai\)"):
        pools.pick("ollama", "qwen3")
    pools.reload(load("providers:\n" + provider("ollama", "main")))  # now with a key of its own
    assert (list(pools.pools), snapshot.snapshot(pools)["without_credentials"]) == (["ollama"], {})


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
        for c in snapshot.snapshot(pools)["providers"][name]["credentials"]
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
    loaded = state_file.read(path)
    assert loaded.problem is None
    restarted.restore(loaded.entries)
    assert states(restarted, "zai") == [
        ("a", "cooling", ["2025-06-15T20:06:40Z"], 1, 1, 0, 0, 429),
        ("b", "healthy", [], 1, 1, 0, 0, 503),
        ("c", "healthy", [], 0, 0, 0, 0, None),
    ]
    assert restarted.pools["zai"].members[0].cooldowns == pools.pools["zai"].members[0].cooldowns
    assert restarted.pools["zai"].members[1].cooldowns == {}  # expired: dropped, backoff and all
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
    restarted.restore(state_file.read(path).entries)
    assert states(restarted, "zai") == [
        ("b", "healthy", [], 1, 1, 0, 0, 401),  # a new key: its counters, not the old key's block
        ("c", "healthy", [], 0, 0, 0, 0, None),
    ]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"{not json", "not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
        (b'{"version": 1, "credentials": [1]}\xff', "not UTF-8 text (byte 34)"),
        (b"[]", "not a credential state document (not a JSON object)"),
        (b'{"version": 2, "credentials": []}', "not a version 1 credential state document (version 2)"),
        (b'{"version": "sk-secret", "credentials": []}',
         "not a version 1 credential state document (no version number)"),
        (b'{"version": 1, "credentials": {"sk-secret": 1}}', "its credentials are not a list"),
    ],
)
def test_a_file_that_is_no_state_document_is_set_aside(tmp_path, data, why):
    """Renamed, not left for the next save to replace unseen; nothing of it is used."""
    path = tmp_path / "routes.state.json"
    path.write_bytes(data)
    loaded = state_file.read(path)
    assert loaded == state_file.Loaded([], FileProblem(str(path), why, NOTHING, f"{path}.corrupt"))
    assert NOTHING == "nothing: cooldowns and counters start afresh"
    assert not path.exists()
    assert (tmp_path / "routes.state.json.corrupt").read_bytes() == data


def saved(tmp_path) -> tuple[Path, list[dict]]:
    """A state file of three credentials, a and c cooling, and its entries to spoil."""
    pools, _ = pools_of(provider("zai", "a", "b", "c"))
    fail(pools, "zai", "a", 429, headers={"retry-after": "600"})
    fail(pools, "zai", "c", 429, headers={"retry-after": "600"})
    path = tmp_path / "routes.state.json"
    pools.save(path)
    return path, json.loads(path.read_text())["credentials"]


def write_entries(path, entries, **more) -> bytes:
    """A state file of `entries`, and `more` of the document (its logins)."""
    data = json.dumps({"version": 1, "saved_at": "2025-06-15T15:06:40Z", "credentials": entries, **more}).encode()
    path.write_bytes(data)
    return data


def test_bad_entries_are_skipped_and_the_rest_kept(tmp_path, caplog):
    """An entry that cannot be used costs only itself; a bad cooldown costs only itself,
    not its credential's counters. The bytes are copied aside, since the next save
    rewrites the file without what was skipped."""
    path, entries = saved(tmp_path)
    entries[1]["requests"] = "sk-ant-api03-secret"  # values are never quoted: a hand edit could put anything there
    entries[2]["cooldowns"][0]["kind"] = "quota"  # a kind this version does not know
    entries.append("an entry that is not an object")
    data = write_entries(path, entries)
    loaded = state_file.read(path)
    assert loaded.problem == FileProblem(
        str(path),
        "skipped 2 of 4 credential entries and 1 cooldown that could not be used: credentials[1] (zai/b): requests "
        "is not a whole number; credentials[3]: not a JSON object; credentials[2] (zai/c) cooldowns[0]: its kind "
        "is not one that cools a credential",
        "2 of 4 credential entries, without 1 bad cooldown",
        f"{path}.corrupt",
    )
    assert "sk-ant" not in loaded.problem.text()
    assert path.read_bytes() == data and (tmp_path / "routes.state.json.corrupt").read_bytes() == data
    pools, _ = pools_of(provider("zai", "a", "b", "c"))
    pools.restore(loaded.entries)
    assert states(pools, "zai") == [
        ("a", "cooling", ["2025-06-15T15:16:40Z"], 1, 1, 0, 0, 429),
        ("b", "healthy", [], 0, 0, 0, 0, None),  # skipped: starts afresh
        ("c", "healthy", [], 1, 1, 0, 0, 429),  # its counters, without the cooldown
    ]
    assert caplog.messages == []  # reading only reports; the gateway logs


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"errors": True}, "errors is not a whole number"),  # a bool is an int to isinstance
        ({"input_tokens": -1}, "input_tokens is negative"),
        ({"last_status": "teapot"}, "last_status is neither a status nor a known transport failure"),
        ({"label": None}, "label is not text"),
        ({"cooldowns": None}, "cooldowns is not a list"),
        ({"fingerprint": ...}, "no fingerprint"),
    ],
)
def test_why_an_entry_is_skipped(tmp_path, change, why):
    path, entries = saved(tmp_path)
    entries[0] = {k: v for k, v in (entries[0] | change).items() if v is not ...}
    write_entries(path, entries)
    problem = state_file.read(path).problem
    where = "credentials[0]" if "label" in change else "credentials[0] (zai/a)"
    assert problem is not None
    assert problem.problem == f"skipped 1 of 3 credential entries that could not be used: {where}: {why}"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"until": float("inf")}, "until is not a finite number"),  # Python's json writes and reads Infinity
        ({"kind": "success"}, "its kind is not one that cools a credential"),
        ({"stated": 1}, "stated is not true or false"),
        ({"model": 4}, "model is not text or null"),
    ],
)
def test_why_a_cooldown_is_skipped(tmp_path, change, why):
    path, entries = saved(tmp_path)
    entries[0]["cooldowns"][0] |= change
    write_entries(path, entries)
    problem = state_file.read(path).problem
    assert problem is not None and problem.problem == (
        f"skipped 1 cooldown that could not be used: credentials[0] (zai/a) cooldowns[0]: {why}"
    )
    assert problem.kept == "3 of 3 credential entries, without 1 bad cooldown"


def test_a_long_list_of_reasons_is_cut_short(tmp_path):
    path, entries = saved(tmp_path)
    write_entries(path, entries + [None] * 5)
    problem = state_file.read(path).problem
    assert problem is not None and problem.problem == (
        "skipped 5 of 8 credential entries that could not be used: credentials[3]: not a JSON object; "
        "credentials[4]: not a JSON object; credentials[5]: not a JSON object; and 2 more"
    )


def test_an_unreadable_file_is_set_aside_and_a_failed_set_aside_is_said(tmp_path):
    path = tmp_path / "routes.state.json"
    path.mkdir()  # reading it fails as an unreadable file would (the tests run as root: modes do not stop them)
    assert state_file.read(path).problem == FileProblem(
        str(path), f"cannot be read (Is a directory: {path})", NOTHING, f"{path}.corrupt")
    path.write_text("{not json")
    (tmp_path / "routes.state.json.corrupt" / "earlier").write_text("")  # a non-empty directory cannot be replaced
    assert state_file.read(path).problem == FileProblem(
        str(path), "not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1)); it could "
        f"not be set aside (Is a directory: {path} → {path}.corrupt), so the next save replaces it", NOTHING)
    assert path.read_text() == "{not json"


def test_a_missing_state_file_is_a_first_start(tmp_path):
    assert state_file.read(tmp_path / "nothing.json") == state_file.Loaded([], None)
    assert list(tmp_path.iterdir()) == []


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
    assert snapshot.snapshot(pools)["providers"]["zai"]["credentials"][0]["in_flight"] == 1


# -- as the Credentials addon writes it --------------------------------------------------


@pytest.fixture
def addon(tmp_path, monkeypatch) -> Iterator[Credentials]:
    monkeypatch.setenv("MODELMUX_STATE_DIR", str(tmp_path / "state"))
    config = tmp_path / "routes.yaml"
    config.write_text("providers:\n" + provider("zai", "a", "b"))
    settings = Settings()
    credentials = Credentials(settings)
    with taddons.context(settings, credentials) as context:
        context.configure(settings, modelmux_config=str(config))
        yield credentials


def test_an_older_dump_never_replaces_a_newer_one(addon):
    """At exit the saver's thread may still be writing an older dump when the final
    save runs: whichever finishes last, the newer counters stay."""
    assert addon.pools and addon.state_path
    older = addon._dump()
    fail(addon.pools, "zai", "a", 429)
    newer = addon._dump()
    addon._write(addon.state_path, *newer)
    addon._write(addon.state_path, *older)
    assert addon.state_path.read_bytes() == newer[1]
    assert [e.requests for e in state_file.read(addon.state_path).entries] == [1, 0]


def test_a_failing_write_is_reported_until_one_succeeds(addon, monkeypatch, caplog):
    assert addon.state_path
    path = addon.state_path

    def full(target, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    with caplog.at_level(logging.INFO):
        with monkeypatch.context() as patched:
            patched.setattr(state_file, "write_private", full)
            addon.save()
            addon.save()
        assert [p.document() for p in addon.problems()] == [{
            "file": str(path), "problem": f"cannot be written (No space left on device: {path})",
            "kept": "cooldowns and counters in memory only: a restart now would lose them", "set_aside": None,
        }]  # fmt: skip
        assert addon._dirty  # tried again at the saver's next tick
        addon.save()
    assert addon.problems() == [] and path.exists()
    assert caplog.messages == [
        f"cannot write the credential state to {path} (No space left on device: {path}); cooldowns will not "
        "survive a restart",
        f"the credential state is written to {path} again",
    ]
