"""Usage records, their file (rotation, corrupt lines) and the per-day tallies, with plain data."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from modelmux import usage
from modelmux.usage import SAMPLES, Record, Tally, UsageFile, percentiles

PLUS_TWO = timezone(timedelta(hours=2))
# 2026-03-10 12:00 local, in a zone two hours ahead of UTC (set by the `local` fixture).
NOON = datetime(2026, 3, 10, 12, 0, tzinfo=PLUS_TWO).timestamp()
MIDNIGHT = datetime(2026, 3, 11, 0, 0, tzinfo=PLUS_TWO).timestamp()
HOUR = 3600.0


@pytest.fixture(autouse=True)
def local() -> Iterator[None]:
    """Local time two hours ahead of UTC (a POSIX TZ string: no tz database needed)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "XST-02"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def summary(**changes: Any) -> dict[str, Any]:
    """A routed flow's summary as the Dashboard writes it (the contract's example)."""
    return {
        "kind": "routed", "time": NOON, "requested_model": "claude-sonnet-4-5", "provider": "openai",
        "model": "gpt-4o", "credential": "work", "route": "claude-*", "profile": "fast", "status": 200,
        "error_type": None, "stream": True, "input_tokens": 120, "cached_tokens": 3000, "cache_write_tokens": 5,
        "output_tokens": 40, "ttft_ms": 312.5, "total_ms": 1200.0, "attempts": 2,
        "failover": ["openai/key-a 429", "openai/work 200"],
    } | changes  # fmt: skip


def record(**changes: Any) -> Record:
    return Record.of_summary(summary(**changes))


def tally_of(*records: Record) -> Tally:
    tally = Tally()
    for each in records:
        tally.add(each)
    return tally


# -- records ------------------------------------------------------------------------


def test_a_record_is_one_line_of_the_summarys_fields_and_no_more() -> None:
    line = record(time=NOON + 0.12345, ttft_ms=312.54, total_ms=1200.0).line()
    assert line == (
        '{"v":1,"time":1773136800.123,"provider":"openai","credential":"work","model":"gpt-4o",'
        '"requested_model":"claude-sonnet-4-5","status":200,"error_type":null,"input_tokens":120,'
        '"cached_tokens":3000,"cache_write_tokens":5,"output_tokens":40,"ttft_ms":312.5,"total_ms":1200.0,'
        '"attempts":2}\n'
    )
    assert Record.parse(line) == record(time=1773136800.123, ttft_ms=312.5)


def test_a_summary_missing_values_gets_defaults_and_one_without_time_is_refused() -> None:
    sparse = Record.of_summary({"time": NOON, "status": 502, "error_type": "api_error", "input_tokens": True,
                                "output_tokens": -3, "ttft_ms": float("nan"), "provider": 7})
    assert sparse == Record(
        time=NOON, provider=None, credential=None, model=None, requested_model=None, status=502,
        error_type="api_error", input_tokens=0, cached_tokens=0, cache_write_tokens=0, output_tokens=0,
        ttft_ms=None, total_ms=None, attempts=0,
    )  # fmt: skip
    with pytest.raises(ValueError, match="no time"):
        Record.of_summary({"status": 200})


@pytest.mark.parametrize(
    ("status", "error_type", "failed"),
    [(200, None, False), (429, "rate_limit_error", True), (200, "overloaded_error", True), (0, None, False),
     (0, "api_error", True), (503, None, True)],
)  # fmt: skip
def test_what_counts_as_an_error(status: int, error_type: str | None, failed: bool) -> None:
    assert record(status=status, error_type=error_type).failed is failed


# -- tallies ------------------------------------------------------------------------


def test_exact_aggregates_by_every_grouping() -> None:
    tally = tally_of(
        record(ttft_ms=100.0),
        record(ttft_ms=300.0, status=429, error_type="rate_limit_error", input_tokens=0, cached_tokens=0,
               cache_write_tokens=0, output_tokens=0),
        record(credential="home", ttft_ms=200.0, input_tokens=10, cached_tokens=0, cache_write_tokens=0,
               output_tokens=4),
        record(model="gpt-4o-mini", ttft_ms=None, status=0),
        record(provider="zai", credential="main", model="glm-4.6", ttft_ms=50.0, input_tokens=1000,
               cached_tokens=0, cache_write_tokens=0, output_tokens=100),
    )  # fmt: skip
    by_all = tally.report(1, "all", NOON)
    assert by_all == {
        "days": 1, "by": "all", "from": "2026-03-10", "to": "2026-03-10",
        "rows": [
            {"provider": "openai", "credential": "work", "model": "gpt-4o", "requests": 2, "errors": 1,
             "input_tokens": 120, "cached_tokens": 3000, "cache_write_tokens": 5, "output_tokens": 40,
             "ttft_p50_ms": 100.0, "ttft_p95_ms": 300.0},
            {"provider": "openai", "credential": "home", "model": "gpt-4o", "requests": 1, "errors": 0,
             "input_tokens": 10, "cached_tokens": 0, "cache_write_tokens": 0, "output_tokens": 4,
             "ttft_p50_ms": 200.0, "ttft_p95_ms": 200.0},
            {"provider": "openai", "credential": "work", "model": "gpt-4o-mini", "requests": 1, "errors": 0,
             "input_tokens": 120, "cached_tokens": 3000, "cache_write_tokens": 5, "output_tokens": 40,
             "ttft_p50_ms": None, "ttft_p95_ms": None},
            {"provider": "zai", "credential": "main", "model": "glm-4.6", "requests": 1, "errors": 0,
             "input_tokens": 1000, "cached_tokens": 0, "cache_write_tokens": 0, "output_tokens": 100,
             "ttft_p50_ms": 50.0, "ttft_p95_ms": 50.0},
        ],
        "total": {"requests": 5, "errors": 1, "input_tokens": 1250, "cached_tokens": 6000,
                  "cache_write_tokens": 10, "output_tokens": 184, "ttft_p50_ms": 100.0, "ttft_p95_ms": 300.0},
    }  # fmt: skip
    totals = by_all["total"]
    assert [r["provider"] for r in tally.report(1, "provider", NOON)["rows"]] == ["openai", "zai"]
    assert tally.report(1, "provider", NOON)["rows"][0] == {
        "provider": "openai", "requests": 4, "errors": 1, "input_tokens": 250, "cached_tokens": 6000,
        "cache_write_tokens": 10, "output_tokens": 84, "ttft_p50_ms": 200.0, "ttft_p95_ms": 300.0,
    }  # fmt: skip
    assert [(r["provider"], r["model"], r["requests"]) for r in tally.report(1, "model", NOON)["rows"]] == [
        ("openai", "gpt-4o", 3), ("openai", "gpt-4o-mini", 1), ("zai", "glm-4.6", 1)
    ]  # fmt: skip
    assert [(r["provider"], r["credential"], r["requests"]) for r in tally.report(1, "credential", NOON)["rows"]] == [
        ("openai", "work", 3), ("openai", "home", 1), ("zai", "main", 1)
    ]  # fmt: skip
    for by in usage.GROUPINGS:
        assert tally.report(1, by, NOON)["total"] == totals


def test_percentiles_are_nearest_rank() -> None:
    ones = [(float(v), 1.0) for v in range(20, 0, -1)]
    assert percentiles(ones, (50, 95, 100, 0)) == [10.0, 19.0, 20.0, 1.0]
    four = [(400.0, 1.0), (100.0, 1.0), (300.0, 1.0), (200.0, 1.0)]
    assert percentiles(four, (50, 95)) == [200.0, 400.0]
    assert percentiles([(7.0, 1.0)], (50, 95)) == [7.0, 7.0]
    assert percentiles([(5.0, 1.0), (9.0, 3.0)], (25, 26)) == [5.0, 9.0]  # 9 stands for three requests
    assert percentiles([], (50, 95)) == [None, None]


def test_a_bucket_keeps_at_most_SAMPLES_and_weighs_them_by_what_they_stand_for() -> None:
    # 512 quick answers from key "fast", 3 × 512 slow ones from key "slow": a quarter are quick.
    tally = tally_of(
        *(record(credential="fast", ttft_ms=10.0) for _ in range(SAMPLES)),
        *(record(credential="slow", ttft_ms=1000.0 + i % 7) for i in range(3 * SAMPLES)),
    )
    slow = tally.days[datetime.fromtimestamp(NOON).date()][("openai", "slow", "gpt-4o", None)]
    assert (len(slow.samples), slow.ttft_count, slow.requests) == (SAMPLES, 3 * SAMPLES, 3 * SAMPLES)
    row = tally.report(1, "provider", NOON)["rows"][0]
    assert row["requests"] == 4 * SAMPLES
    # Unweighted, half the kept samples are 10 ms and the median would be 10.
    assert row["ttft_p50_ms"] >= 1000.0
    assert 1000.0 <= row["ttft_p95_ms"] <= 1006.0
    assert tally.report(1, "credential", NOON)["rows"][1]["ttft_p95_ms"] == 10.0


def test_days_are_local_and_a_report_covers_the_last_n_of_them() -> None:
    tally = tally_of(
        record(time=MIDNIGHT - 1, input_tokens=1),  # 23:59:59 local on the 10th (21:59:59 UTC)
        record(time=MIDNIGHT, input_tokens=2),  # 00:00 local on the 11th, still the 10th in UTC
        record(time=MIDNIGHT + 23 * HOUR, input_tokens=4),
        record(time=MIDNIGHT - 7 * 24 * HOUR, input_tokens=8),  # 00:00 on the 4th: the 7th day back from the 10th
        record(time=MIDNIGHT - 7 * 24 * HOUR - 1, input_tokens=16),  # 23:59:59 on the 3rd
    )
    eleventh = MIDNIGHT + 12 * HOUR

    def inputs(days: int, now: float) -> tuple[str, str, int]:
        report = tally.report(days, "provider", now)
        return report["from"], report["to"], report["total"]["input_tokens"]

    assert inputs(1, eleventh) == ("2026-03-11", "2026-03-11", 2 + 4)
    assert inputs(1, MIDNIGHT - 1) == ("2026-03-10", "2026-03-10", 1)
    assert inputs(2, eleventh) == ("2026-03-10", "2026-03-11", 1 + 2 + 4)
    assert inputs(7, MIDNIGHT - 1) == ("2026-03-04", "2026-03-10", 1 + 8)
    assert inputs(8, MIDNIGHT - 1) == ("2026-03-03", "2026-03-10", 1 + 8 + 16)
    assert inputs(7, MIDNIGHT - 1 - 6 * 24 * HOUR)[2] == 8 + 16  # later records are not in an earlier report


def test_a_daily_report_adds_each_days_rows_oldest_first_and_leaves_the_rest_as_it_was() -> None:
    tally = tally_of(
        record(time=NOON - 2 * 24 * HOUR, ttft_ms=100.0),  # the 8th
        record(time=NOON, provider="zai", credential="main", model="glm-4.6", ttft_ms=None, input_tokens=1,
               cached_tokens=0, cache_write_tokens=0, output_tokens=2, status=429, error_type="rate_limit_error"),
        record(time=NOON - 3 * 24 * HOUR),  # the 7th: before the period
    )  # fmt: skip
    plain = tally.report(3, "provider", NOON)
    daily = tally.report(3, "provider", NOON, daily=True)
    assert {k: v for k, v in daily.items() if k != "daily"} == plain
    assert list(plain) == ["days", "by", "from", "to", "rows", "total"]  # the document as before
    openai = {"requests": 1, "errors": 0, "input_tokens": 120, "cached_tokens": 3000, "cache_write_tokens": 5,
              "output_tokens": 40, "ttft_p50_ms": 100.0, "ttft_p95_ms": 100.0}
    zai = {"requests": 1, "errors": 1, "input_tokens": 1, "cached_tokens": 0, "cache_write_tokens": 0,
           "output_tokens": 2, "ttft_p50_ms": None, "ttft_p95_ms": None}
    none = {"requests": 0, "errors": 0, "input_tokens": 0, "cached_tokens": 0, "cache_write_tokens": 0,
            "output_tokens": 0, "ttft_p50_ms": None, "ttft_p95_ms": None}
    assert daily["daily"] == [
        {"day": "2026-03-08", "rows": [{"provider": "openai", **openai}], "total": openai},
        {"day": "2026-03-09", "rows": [], "total": none},
        {"day": "2026-03-10", "rows": [{"provider": "zai", **zai}], "total": zai},
    ]  # fmt: skip
    assert [d["day"] for d in tally.report(1, "all", NOON, daily=True)["daily"]] == ["2026-03-10"]
    assert tally.report(1, "model", NOON, daily=True)["daily"][0]["rows"] == [
        {"provider": "zai", "model": "glm-4.6", **zai}]


def test_an_empty_report_and_bad_queries() -> None:
    empty = Tally().report(7, "model", NOON)
    assert empty == {
        "days": 7, "by": "model", "from": "2026-03-04", "to": "2026-03-10", "rows": [],
        "total": {"requests": 0, "errors": 0, "input_tokens": 0, "cached_tokens": 0, "cache_write_tokens": 0,
                  "output_tokens": 0, "ttft_p50_ms": None, "ttft_p95_ms": None},
    }  # fmt: skip
    with pytest.raises(ValueError, match="by: one of all, provider, model, credential"):
        Tally().report(1, "day", NOON)
    for days in (0, usage.MAX_DAYS + 1):
        with pytest.raises(ValueError, match="days: a whole number from 1 to 366"):
            Tally().report(days, "all", NOON)


def test_days_past_MAX_DAYS_are_dropped() -> None:
    day = 24 * HOUR
    tally = tally_of(record(time=NOON - usage.MAX_DAYS * day), record(time=NOON - (usage.MAX_DAYS - 1) * day))
    assert len(tally.days) == 2
    tally.add(record(time=NOON))
    assert len(tally.days) == 2  # the oldest fell out when today began
    tally.add(record(time=NOON - usage.MAX_DAYS * day))  # too old to keep
    assert tally.report(usage.MAX_DAYS, "all", NOON)["total"]["requests"] == 2


# -- the file -----------------------------------------------------------------------


def test_records_survive_in_the_file_and_it_is_private(tmp_path: Path) -> None:
    file = UsageFile(tmp_path / "deep" / "routes.usage.jsonl")
    written = [record(ttft_ms=float(i)) for i in range(3)]
    file.append([r.line() for r in written[:2]])
    file.append([written[2].line()])
    assert stat.S_IMODE(file.path.stat().st_mode) == 0o600
    assert list(file.records()) == written
    assert file.skipped == 0


def test_rotation_keeps_one_older_file_and_bounds_the_total(tmp_path: Path) -> None:
    line_size = len(record().line())
    file = UsageFile(tmp_path / "u.jsonl", max_bytes=3 * line_size)
    lines = [record(input_tokens=i).line() for i in range(8)]
    for line in lines:
        file.append([line])
        assert file.path.stat().st_size <= 3 * line_size
    # 0 1 2 → .1; 3 4 5 → .1 (replacing 0 1 2); 6 7 stay in the file.
    assert file.rotated.read_text() == "".join(lines[3:6])
    assert file.path.read_text() == "".join(lines[6:])
    assert [r.input_tokens for r in file.records()] == [3, 4, 5, 6, 7]
    file.append(lines[:5])  # one batch past the limit: rotates first, then is written whole
    assert [r.input_tokens for r in file.records()] == [6, 7, 0, 1, 2, 3, 4]


def test_corrupt_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    good = [record(input_tokens=i).line() for i in range(4)]
    wrong_version = json.dumps({**json.loads(good[0]), "v": 2}) + "\n"
    boolean = good[0].replace('"attempts":2', '"attempts":true')
    missing = json.dumps({k: v for k, v in json.loads(good[0]).items() if k != "model"}) + "\n"
    file = UsageFile(tmp_path / "u.jsonl")
    file.rotated.write_text(good[0] + "not json\n")
    file.path.write_text(good[1] + "\n" + wrong_version + '["a list"]\n' + good[2] + boolean + missing + good[3])
    assert [r.input_tokens for r in file.records()] == [0, 1, 2, 3]
    assert (file.kept, file.skipped, file.first_skipped) == (4, 5, f"{file.rotated} line 2: not JSON")
    problem = file.skipped_problem()
    assert problem is not None and problem.document() == {
        "file": str(file.path),
        "problem": f"5 lines are not usage records, skipped (the first: {file.rotated} line 2: not JSON)",
        "kept": "4 records",
        "set_aside": None,  # the lines stay in the file
    }
    tally = Tally()
    assert usage.load(file, tally) == 4
    assert tally.report(1, "all", NOON)["total"]["input_tokens"] == 6


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("not json", "not JSON"),
        ('["a list"]', "not a version 1 usage record"),
        ('{"v": 2}', "not a version 1 usage record"),
        ('{"v": 1, "time": 1.5}', "no provider"),
        ('{"v": 1, "time": "sk-secret-value"}', "time is not a number ≥ 0"),
        ('{"v": 1, "time": NaN}', "time is not a number ≥ 0"),
    ],
)
def test_why_a_line_is_not_a_record_quotes_nothing_of_it(line: str, why: str) -> None:
    with pytest.raises(ValueError) as raised:
        Record.parse(line)
    assert str(raised.value) == why


def test_a_field_of_the_wrong_type_is_named() -> None:
    whole = json.loads(record().line())
    for name, bad, kind in [("attempts", True, "a whole number ≥ 0"), ("input_tokens", -1, "a whole number ≥ 0"),
                            ("model", 7, "text or null"), ("ttft_ms", "9", "a number ≥ 0 or null")]:
        with pytest.raises(ValueError) as raised:
            Record.parse(json.dumps({**whole, name: bad}))
        assert str(raised.value) == f"{name} is not {kind}"


def test_a_line_cut_short_by_a_crash_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    file = UsageFile(tmp_path / "u.jsonl")
    file.path.write_text(record(input_tokens=1).line() + record(input_tokens=2).line()[:40])
    file.append([record(input_tokens=3).line()])
    assert [r.input_tokens for r in file.records()] == [1, 3]
    assert file.skipped == 1


# -- the table ----------------------------------------------------------------------


def test_the_table() -> None:
    tally = tally_of(
        record(ttft_ms=312.5, input_tokens=1234567),
        record(ttft_ms=1500.0, status=529, error_type="overloaded_error"),
        record(provider="zai", credential=None, model="glm-4.6", ttft_ms=None, cached_tokens=0),
    )
    assert usage.table(tally.report(1, "all", NOON)) == [
        "today (2026-03-10)",
        "  provider  credential  model    requests  errors      input  cached  output  ttft p50  ttft p95",
        "  openai    work        gpt-4o          2       1  1,234,687   6,000      80    312 ms    1.50 s",
        "  zai       -           glm-4.6         1       0        120       0      40         -         -",
        "  total                                 3       1  1,234,807   6,000     120    312 ms    1.50 s",
    ]
    assert usage.table(tally.report(7, "provider", NOON))[:2] == [
        "last 7 days (2026-03-04 to 2026-03-10)",
        "  provider  requests  errors      input  cached  output  ttft p50  ttft p95",
    ]
    assert usage.table(Tally().report(7, "all", NOON)) == ["last 7 days (2026-03-04 to 2026-03-10)", "  no requests"]
