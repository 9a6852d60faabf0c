"""The quota kept across restarts (credentials/state_file.py), and the client's own logins
heard on passthrough (credentials/client_logins.py): what status shows of each."""

from __future__ import annotations

import json

from pooling import T0, Clock, load, pools_of, provider
from test_pool_state import saved, write_entries

from modelmux.cli.status_report import client_login_lines
from modelmux.config.file_problems import FileProblem
from modelmux.credentials import quota, state_file
from modelmux.credentials.client_logins import Logins
from modelmux.credentials.pools import Pools
from modelmux.credentials.snapshot import snapshot

HOUR = 3600


def unified(used: str, reset: float) -> dict[str, str]:
    """A Claude subscription's answer headers: its 5-hour window `used`, resetting at `reset`."""
    return {
        "anthropic-ratelimit-unified-status": "allowed",
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
        "anthropic-ratelimit-unified-5h-utilization": used,
        "anthropic-ratelimit-unified-5h-reset": str(int(reset)),
        "anthropic-ratelimit-unified-5h-status": "allowed",
        "anthropic-ratelimit-unified-7d-utilization": "0.5",
        "anthropic-ratelimit-unified-7d-reset": str(int(reset + 24 * HOUR)),
        "anthropic-ratelimit-unified-7d-status": "allowed_warning",
    }


def seen(used: str, at: float = T0) -> quota.Quota:
    found = quota.read_mapping(unified(used, at + HOUR), at)
    assert found is not None
    return found


def window(name: str, used: float, resets_at: str, seconds_left: float, status: str | None, reset: bool) -> dict:
    return {"name": name, "used": used, "resets_at": resets_at, "seconds_left": seconds_left, "status": status,
            "reset": reset}


# As status shows the quota seen at T0 (2025-06-15T15:06:40Z): an hour later, once its
# 5-hour window has reset, and a day later, once the 7-day one has too.
SEEN_AT = "2025-06-15T15:06:40Z"
AN_HOUR_ON = {
    "source": "anthropic", "left": 0.5, "status": "allowed", "resets_at": None, "binding": "five_hour",
    "seen_at": SEEN_AT,
    "windows": [window("5h", 0.0, "2025-06-15T16:06:40Z", 0.0, None, True),
                window("7d", 0.5, "2025-06-16T16:06:40Z", 86400.0, "allowed_warning", False)],
}


def test_a_window_whose_reset_passed_shows_as_reset():
    fresh = seen("0.42").describe(T0 + 60)
    assert fresh["windows"][0] == window("5h", 0.42, "2025-06-15T16:06:40Z", 3540.0, "allowed", False)
    assert fresh["left"] == 0.5  # the 7-day window binds
    assert seen("0.42").describe(T0 + HOUR) == AN_HOUR_ON
    later = seen("0.42").describe(T0 + 26 * HOUR)
    assert [(w["used"], w["status"], w["reset"]) for w in later["windows"]] == [(0.0, None, True), (0.0, None, True)]
    assert later["left"] == 1.0
    refused = quota.read_mapping({"anthropic-ratelimit-unified-status": "rejected",
                                  "anthropic-ratelimit-unified-reset": str(int(T0 + 60))}, T0)
    assert (refused.describe(T0)["status"], refused.describe(T0 + 60)["status"]) == ("rejected", None)


def test_the_quota_survives_a_restart_as_it_was_seen(tmp_path):
    routes = provider("zai", "a", "b")
    pools, _ = pools_of(routes)
    members = {m.label: m for m in pools.pool("zai").members}
    members["a"].quota = seen("0.42")
    pools.logins.observe("anthropic", {"authorization": "Bearer sk-ant-oat01-login-one"}, seen("0.9"))
    path = tmp_path / "routes.state.json"
    pools.save(path)
    text = path.read_text()
    assert "sk-ant-oat01" not in text and "login-one" not in text
    stored = json.loads(text)
    assert stored["credentials"][0]["quota"] == {
        "source": "anthropic", "seen": T0, "seen_utc": SEEN_AT, "status": "allowed", "resets_at": None,
        "binding": "five_hour",
        "windows": [{"name": "5h", "used": 0.42, "resets_at": T0 + HOUR, "status": "allowed"},
                    {"name": "7d", "used": 0.5, "resets_at": T0 + 25 * HOUR, "status": "allowed_warning"}],
    }
    assert stored["credentials"][1]["quota"] is None

    clock = Clock()
    clock.advance(HOUR)  # back an hour later: the 5-hour window has reset since
    restarted = Pools(load("providers:\n" + routes), clock)
    loaded = state_file.read(path)
    assert loaded.problem is None
    restarted.restore(loaded.entries, loaded.logins)
    document = snapshot(restarted)
    assert [c["quota"] for c in document["providers"]["zai"]["credentials"]] == [AN_HOUR_ON, None]
    login = state_file.read(path).logins[0].fingerprint
    assert document["client_logins"] == [{"provider": "anthropic", "login": login, "kind": "subscription",
                                          "quota": AN_HOUR_ON}]
    assert client_login_lines(document) == [
        "client logins on passthrough (by a fingerprint of their token):",
        f"  anthropic  client's subscription login {login}",
        "    quota (anthropic, seen 2025-06-15T15:06:40Z): 5h reset at 2025-06-15T16:06:40Z; 7d 50% used, resets "
        "2025-06-16T16:06:40Z (in 24 h) allowed_warning; allowed",
    ]
    # A replaced key does not inherit the old key's quota.
    rotated = Pools(load("providers:\n" + provider("zai", "a", "b", secret="rotated")), clock)
    rotated.restore(loaded.entries)
    assert [m.quota for m in rotated.pool("zai").members] == [None, None]


def test_an_older_file_without_quota_or_logins_loads(tmp_path):
    path, entries = saved(tmp_path)
    for entry in entries:
        del entry["quota"]
    write_entries(path, entries)  # no "logins" either
    loaded = state_file.read(path)
    assert loaded.problem is None and loaded.logins == []
    assert [e.quota for e in loaded.entries] == [None, None, None]
    assert [len(e.cooldowns) for e in loaded.entries] == [1, 0, 1]


def test_a_bad_quota_or_login_costs_only_itself(tmp_path):
    path, entries = saved(tmp_path)
    good = state_file.quota_document(seen("0.42"))
    entries[0]["quota"] = good | {"seen": float("inf")}
    entries[1]["quota"] = good | {"windows": [{"name": "5h", "used": "sk-ant-api03-secret", "resets_at": None,
                                               "status": None}]}
    entries[2]["quota"] = good
    data = write_entries(path, entries, logins=[
        {"provider": "anthropic", "fingerprint": "0123456789abcdef", "kind": None, "quota": good},
        {"provider": "anthropic", "fingerprint": "fedcba9876543210", "kind": None, "quota": "lots"},
    ])
    problem = state_file.read(path).problem
    assert problem == FileProblem(
        str(path),
        "skipped 2 quotas and 1 of 2 login entries that could not be used: credentials[0] (zai/a) quota: seen is "
        "not a finite number; credentials[1] (zai/b) quota: windows[0]: used is not a number or null; logins[1]: "
        "quota is not a JSON object",
        "3 of 3 credential entries, without 2 bad quotas; 1 of 2 login entries",
        f"{path}.corrupt",
    )
    assert problem is not None and "sk-ant" not in problem.text()
    loaded = state_file.read(path)
    assert [e.quota for e in loaded.entries] == [None, None, seen("0.42")]
    assert [len(e.cooldowns) for e in loaded.entries] == [1, 0, 1]  # the rest of each entry is kept
    assert [login.fingerprint for login in loaded.logins] == ["0123456789abcdef"]
    assert (tmp_path / "routes.state.json.corrupt").read_bytes() == data


def test_logins_are_told_apart_by_a_fingerprint_and_only_the_latest_few_kept():
    logins = Logins(limit=2)
    tokens = ["sk-ant-oat01-first-QzWx", "sk-ant-oat01-second-RyVu", "sk-ant-api03-third-PtSn"]
    for token, used in zip(tokens, ["0.1", "0.2", "0.3"], strict=True):
        logins.observe("anthropic", {"authorization": f"Bearer {token}"} if "oat" in token else {"x-api-key": token},
                       seen(used))
    logins.observe("anthropic", {"authorization": "Bearer sk-ant-oat01-second-RyVu"}, seen("0.25", T0 + 1))
    assert logins.observe("anthropic", {"x-modelmux-key": "the-gateway-key"}, seen("0.5")) is None  # no login sent
    described = logins.describe(T0 + 1)
    assert [(d["kind"], d["quota"]["windows"][0]["used"]) for d in described] == [("subscription", 0.25),
                                                                                  ("api-key", 0.3)]  # latest first
    fingerprints = [d["login"] for d in described]
    assert all(len(f) == 16 and int(f, 16) >= 0 for f in fingerprints) and len(set(fingerprints)) == 2
    text = json.dumps(described)
    for token in tokens:
        assert token not in text and token[:12] not in text and token[-4:] not in text
