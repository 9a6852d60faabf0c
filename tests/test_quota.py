"""modelmux/credentials/quota.py: what answers say of a subscription's quota, and the
`most-quota` strategy that picks by it."""

from __future__ import annotations

from pathlib import Path

from modelmux.config import loader
from modelmux.credentials import quota
from modelmux.credentials.pools import Pools
from modelmux.credentials.snapshot import snapshot

NOW = 1_800_000_000.0

# As a Claude Max login's answer carries them (names as Anthropic sends them, lowercase).
ANTHROPIC = {
    "content-type": "application/json",
    "anthropic-ratelimit-unified-status": "allowed",
    "anthropic-ratelimit-unified-reset": str(int(NOW) + 3600),
    "anthropic-ratelimit-unified-representative-claim": "five_hour",
    "anthropic-ratelimit-unified-fallback-percentage": "0.5",
    "anthropic-ratelimit-unified-5h-utilization": "0.42",
    "anthropic-ratelimit-unified-5h-reset": str(int(NOW) + 3600),
    "anthropic-ratelimit-unified-5h-status": "allowed",
    "anthropic-ratelimit-unified-7d-utilization": "0.18",
    "anthropic-ratelimit-unified-7d-reset": str(int(NOW) + 86400),
    "anthropic-ratelimit-unified-7d-status": "allowed",
    "anthropic-ratelimit-unified-7d_oi-utilization": "0.05",
    "anthropic-ratelimit-unified-7d_oi-reset": str(int(NOW) + 86400),
    "anthropic-ratelimit-unified-overage-status": "rejected",
    "anthropic-ratelimit-unified-overage-disabled-reason": "org_level_disabled",
    "anthropic-ratelimit-requests-remaining": "10",
}
CODEX = {
    "X-Codex-Primary-Used-Percent": "37.5",
    "X-Codex-Primary-Window-Minutes": "300",
    "X-Codex-Primary-Reset-After-Seconds": "600",
    "x-codex-secondary-used-percent": "12",
    "x-codex-secondary-window-minutes": "10080",
    "x-codex-secondary-reset-at": str(int(NOW) + 7200),
    "x-codex-plan-type": "pro",
}


def test_anthropic_unified_headers():
    seen = quota.read_mapping(ANTHROPIC, NOW)
    assert seen is not None
    assert (seen.source, seen.status, seen.resets_at, seen.binding) == ("anthropic", "allowed", NOW + 3600, "five_hour")
    assert [(w.name, w.used, w.resets_at, w.status) for w in seen.windows] == [
        ("5h", 0.42, NOW + 3600, "allowed"),
        ("7d", 0.18, NOW + 86400, "allowed"),
        ("7d_oi", 0.05, NOW + 86400, None),
        ("overage", None, None, "rejected"),  # pay-as-you-go extra usage: refused, not a spent window
    ]
    # The tightest window: 5h (extra usage beyond the plan, refused here, is not the plan's quota).
    assert seen.left(NOW) == 0.58
    assert seen.left(NOW + 3600) == 0.82  # the 5-hour window has reset since: the 7-day one binds


def test_a_refused_account_has_nothing_left_until_its_reset():
    refused = {**ANTHROPIC, "anthropic-ratelimit-unified-status": "rejected",
               "anthropic-ratelimit-unified-5h-utilization": "1.0", "anthropic-ratelimit-unified-5h-status": "rejected"}
    seen = quota.read_mapping(refused, NOW)
    assert seen.left(NOW) == 0.0
    assert seen.left(NOW + 3600) == 0.82  # both resets passed: what the 7-day window leaves


def test_codex_headers_name_their_windows_by_length():
    seen = quota.read_mapping(CODEX, NOW)
    assert seen is not None and seen.source == "codex"
    assert [(w.name, w.used, w.resets_at) for w in seen.windows] == [("5h", 0.375, NOW + 600), ("7d", 0.12, NOW + 7200)]
    assert seen.left(NOW) == 0.625
    unnamed = quota.read_mapping({"x-codex-primary-used-percent": "90"}, NOW)
    assert [(w.name, w.used) for w in unnamed.windows] == [("primary", 0.9)]


def test_answers_without_quota_say_nothing():
    assert quota.read_mapping({"content-type": "application/json", "x-request-id": "r1", "retry-after": "3"}, NOW) is None
    assert quota.read_mapping({}, NOW) is None
    bad = quota.read_mapping({"anthropic-ratelimit-unified-5h-utilization": "lots"}, NOW)
    assert bad is not None and bad.left(NOW) is None  # a value that is not a number is not guessed


def test_describe_is_plain_json():
    described = quota.read_mapping(CODEX, NOW).describe(NOW + 60)
    assert described == {
        "source": "codex", "left": 0.625, "status": None, "resets_at": None, "binding": None,
        "seen_at": "2027-01-15T08:00:00Z",
        "windows": [
            {"name": "5h", "used": 0.375, "resets_at": "2027-01-15T08:10:00Z", "seconds_left": 540.0, "status": None,
             "reset": False},
            {"name": "7d", "used": 0.12, "resets_at": "2027-01-15T10:00:00Z", "seconds_left": 7140.0, "status": None,
             "reset": False},
        ],
    }


POOL = """
providers:
  claude:
    protocol: anthropic
    base_url: https://api.anthropic.com
    strategy: most-quota
    credentials: [{label: a, key: ka}, {label: b, key: kb}, {label: c, key: kc}]
"""


def pools(tmp_path: Path, text: str = POOL) -> Pools:
    config_path = tmp_path / "routes.yaml"
    config_path.write_text(text)
    return Pools(loader.load(config_path), now=lambda: NOW)


def fields(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in headers.items()]


def used(fraction: float) -> dict[str, str]:
    return {"anthropic-ratelimit-unified-5h-utilization": str(fraction),
            "anthropic-ratelimit-unified-5h-reset": str(int(NOW) + 3600)}


def test_most_quota_prefers_the_credential_with_the_most_left(tmp_path):
    state = pools(tmp_path)
    members = {m.label: m for m in state.pool("claude").members}
    # Never heard from: each counts as full, so they are tried in order and each answer tells.
    first = state.pick("claude", "m")
    assert first.member.label == "a"
    state.record(first, 200)
    quota.observe(first.member, fields(used(0.9)), NOW)
    assert state.pick("claude", "m").member.label == "b"  # a is 90% used; b unknown, so full
    members["b"].in_flight = 0
    quota.observe(members["b"], fields(used(0.5)), NOW)
    quota.observe(members["c"], fields(used(0.7)), NOW)
    picked = [state.pick("claude", "m") for _ in range(3)]
    assert [lease.member.label for lease in picked] == ["b", "b", "b"]  # most left: b (fill, not turns)
    for lease in picked:
        lease.release()
    quota.observe(members["b"], fields(used(0.95)), NOW)
    assert state.pick("claude", "m").member.label == "c"
    snapshot_c = next(c for c in snapshot(state)["providers"]["claude"]["credentials"] if c["label"] == "c")
    assert snapshot_c["quota"]["left"] == 0.3
    assert snapshot_c["quota"]["windows"][0]["used"] == 0.7
    assert snapshot(state)["providers"]["claude"]["strategy"] == "most-quota"


def test_an_answer_without_quota_keeps_the_last_word(tmp_path):
    state = pools(tmp_path)
    member = state.pool("claude").members[0]
    quota.observe(member, fields(used(0.3)), NOW)
    quota.observe(member, fields({"content-type": "application/json"}), NOW + 1)
    quota.observe(member, [], NOW + 2)
    assert member.quota is not None and member.quota.windows[0].used == 0.3


def test_most_quota_takes_no_weights(tmp_path):
    import pytest

    with pytest.raises(loader.ConfigError, match="weights only apply to strategy round-robin; remove it, or use "
                                                 "priority to order credentials under most-quota"):
        pools(tmp_path, POOL.replace("{label: a, key: ka}", "{label: a, key: ka, weight: 2}"))


def test_status_shows_a_credentials_quota_in_a_line():
    from modelmux.cli.status_report import quota_text

    refused = {**ANTHROPIC, "anthropic-ratelimit-unified-status": "rejected",
               "anthropic-ratelimit-unified-5h-utilization": "1", "anthropic-ratelimit-unified-5h-status": "rejected"}
    assert quota_text(quota.read_mapping(refused, NOW).describe(NOW + 60)) == (
        "quota (anthropic, seen 2027-01-15T08:00:00Z): 5h 100% used, resets 2027-01-15T09:00:00Z (in 59 min) "
        "rejected; 7d 18% used, resets 2027-01-16T08:00:00Z (in 23 h 59 min); 7d_oi 5% used, resets "
        "2027-01-16T08:00:00Z (in 23 h 59 min); overage rejected; rejected until 2027-01-15T09:00:00Z")
    assert quota_text(quota.read_mapping(CODEX, NOW).describe(NOW)) == (
        "quota (codex, seen 2027-01-15T08:00:00Z): 5h 38% used, resets 2027-01-15T08:10:00Z (in 10 min); "
        "7d 12% used, resets 2027-01-15T10:00:00Z (in 2 h)")


def test_odd_values_are_not_guessed_and_never_raise():
    odd = {"x-codex-primary-used-percent": "inf", "x-codex-primary-window-minutes": "nan",
           "x-codex-secondary-used-percent": "12", "x-codex-secondary-window-minutes": "1e400",
           "x-echo-x-api-key": "zai-main…abcd", "anthropic-organization-id": "ünïcode…"}
    seen = quota.read_mapping(odd, NOW)  # a failed attempt's headers hold redacted values
    assert seen is not None and [(w.name, w.used) for w in seen.windows] == [("secondary", 0.12)]
