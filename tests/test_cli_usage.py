"""`modelmux usage` without a running gateway: the numbers come from the usage file
beside routes.yaml. (Against the real gateway: tests/test_usage_gateway.py.)"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gateway import free_port

from modelmux.cli import main as cli
from modelmux.usage import Record, usage_path

Capture = pytest.CaptureFixture[str]
# 2026-03-10 15:30 in a zone two hours ahead of UTC, where the `local` fixture puts us.
NOW = datetime(2026, 3, 10, 15, 30, tzinfo=timezone(timedelta(hours=2))).timestamp()
DAY = 24 * 3600.0


@pytest.fixture(autouse=True)
def local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("TZ", "XST-02")
    monkeypatch.setenv("MODELMUX_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(cli, "time", SimpleNamespace(time=lambda: NOW))
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def routes(tmp_path: Path) -> tuple[Path, int]:
    port = free_port()
    path = tmp_path / "routes.yaml"
    path.write_text(f"server: {{port: {port}}}\nproviders:\n  zai: {{protocol: anthropic, base_url: 'http://127.0.0.1:9', auth: passthrough}}\n")
    return path, port


def line(ago: float = 0.0, **values: Any) -> str:
    fields = {
        "time": NOW - ago, "provider": "zai", "credential": "main", "model": "glm-4.6", "status": 200,
        "input_tokens": 100, "cached_tokens": 2000, "output_tokens": 50, "ttft_ms": 400.0, "attempts": 1,
    } | values  # fmt: skip
    return Record.of_summary(fields).line()


def usage_file(tmp_path: Path) -> Path:
    """Where `routes(tmp_path)`'s usage records live (the state directory)."""
    return usage_path(tmp_path / "routes.yaml", os.environ)


def write_usage(tmp_path: Path, *lines: str) -> Path:
    path = usage_file(tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))
    return path


def run(capsys: Capture, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_today_and_the_last_7_days_from_the_file(tmp_path: Path, capsys: Capture) -> None:
    config, port = routes(tmp_path)
    file = write_usage(
        tmp_path,
        line(),
        line(60, status=429, error_type="rate_limit_error", input_tokens=0, cached_tokens=0, output_tokens=0,
             ttft_ms=None),
        line(120, credential="backup", ttft_ms=900.0),
        line(3 * DAY, provider="openai", credential="work", model="gpt-4o", ttft_ms=250.0, input_tokens=1500),
        line(7 * DAY, provider="openai", credential="work", model="gpt-4o", input_tokens=99999),  # too old for 7 days
    )  # fmt: skip
    code, out, err = run(capsys, "usage", "--config", str(config))
    assert code == 0
    assert err == f"modelmux: modelmux is not running on 127.0.0.1:{port}; these numbers are from {file}\n"
    assert out.splitlines() == [
        f"usage from {file}",
        "",
        "today (2026-03-10)",
        "  provider  credential  model    requests  errors  input  cached  output  ttft p50  ttft p95",
        "  zai       main        glm-4.6         2       1    100   2,000      50    400 ms    400 ms",
        "  zai       backup      glm-4.6         1       0    100   2,000      50    900 ms    900 ms",
        "  total                                 3       1    200   4,000     100    400 ms    900 ms",
        "",
        "last 7 days (2026-03-04 to 2026-03-10)",
        "  provider  credential  model    requests  errors  input  cached  output  ttft p50  ttft p95",
        "  zai       main        glm-4.6         2       1    100   2,000      50    400 ms    400 ms",
        "  openai    work        gpt-4o          1       0  1,500   2,000      50    250 ms    250 ms",
        "  zai       backup      glm-4.6         1       0    100   2,000      50    900 ms    900 ms",
        "  total                                 4       1  1,700   6,000     150    400 ms    900 ms",
    ]


def test_json_for_one_period_or_both(tmp_path: Path, capsys: Capture) -> None:
    config, _ = routes(tmp_path)
    file = write_usage(tmp_path, line(), line(2 * DAY, credential="backup", ttft_ms=100.0))
    code, out, _ = run(capsys, "usage", "--days", "3", "--by", "provider", "--json", "--config", str(config))
    assert code == 0
    assert json.loads(out) == {
        "days": 3, "by": "provider", "from": "2026-03-08", "to": "2026-03-10", "file": str(file),
        "rows": [{"provider": "zai", "requests": 2, "errors": 0, "input_tokens": 200, "cached_tokens": 4000,
                  "cache_write_tokens": 0, "output_tokens": 100, "ttft_p50_ms": 100.0, "ttft_p95_ms": 400.0}],
        "total": {"requests": 2, "errors": 0, "input_tokens": 200, "cached_tokens": 4000, "cache_write_tokens": 0,
                  "output_tokens": 100, "ttft_p50_ms": 100.0, "ttft_p95_ms": 400.0},
    }  # fmt: skip
    both = json.loads(run(capsys, "usage", "--json", "--by", "credential", "--config", str(config))[1])
    assert [(d["days"], [(r["credential"], r["requests"]) for r in d["rows"]]) for d in both] == [
        (1, [("main", 1)]), (7, [("backup", 1), ("main", 1)])
    ]  # fmt: skip


def test_no_file_yet(tmp_path: Path, capsys: Capture) -> None:
    config, _ = routes(tmp_path)
    code, out, _ = run(capsys, "usage", "--days", "1", "--config", str(config))
    assert (code, out.splitlines()) == (0, [f"usage from {usage_file(tmp_path)}", "",
                                            "today (2026-03-10)", "  no requests"])  # fmt: skip


def test_corrupt_lines_are_skipped_and_said(tmp_path: Path, capsys: Capture) -> None:
    config, _ = routes(tmp_path)
    file = write_usage(tmp_path, line(), "garbage\n", line()[:30] + "\n", line())
    code, out, err = run(capsys, "usage", "--days", "1", "--by", "model", "--config", str(config))
    assert code == 0
    assert out.splitlines()[-2] == "  zai       glm-4.6         2       0    200   4,000     100    400 ms    400 ms"
    assert err.splitlines()[-1] == (
        f"modelmux: {file}: 2 lines are not usage records, skipped (the first: {file} line 2: not JSON); kept 2 records"
    )


def test_an_unreadable_file_and_bad_arguments(tmp_path: Path, capsys: Capture) -> None:
    config, port = routes(tmp_path)
    usage_file(tmp_path).mkdir(parents=True)
    assert run(capsys, "usage", "--config", str(config)) == (1, "", (
        f"modelmux: modelmux is not running on 127.0.0.1:{port}, and {usage_file(tmp_path)} "
        "cannot be read (Is a directory)\n"
    ))  # fmt: skip
    for bad in (["--days", "0"], ["--days", "367"], ["--by", "day"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["usage", *bad, "--config", str(config)])
        assert exit_.value.code == 2
    assert "is not a number of days (1-366)" in capsys.readouterr().err
    assert not os.path.exists(f"{usage_file(tmp_path)}.1")
