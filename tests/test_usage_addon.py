"""The Usage addon in process, with hand-made flows carrying the Dashboard's summary:
what it counts, what it writes, what a restart reads back, and its option."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons, tflow

from modelmux.addons import usage as usage_addon
from modelmux.addons.settings import Settings
from modelmux.addons.usage import Usage
from modelmux.usage import Record, usage_path

ROUTES = "providers:\n  a: {protocol: anthropic, base_url: 'http://127.0.0.1:9', auth: passthrough}\ndefault: {provider: a}\n"
NOW = time.time()  # each test's own moment (now): one taken at import falls out of "today" past midnight


@pytest.fixture(autouse=True)
def now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "NOW", time.time())


def summary(**changes: Any) -> dict[str, Any]:
    return {
        "kind": "routed", "time": NOW, "requested_model": "claude-sonnet-4-5", "provider": "openai",
        "model": "gpt-4o", "credential": "work", "route": "claude-*", "profile": None, "status": 200,
        "error_type": None, "stream": True, "input_tokens": 120, "cached_tokens": 3000, "cache_write_tokens": 0,
        "output_tokens": 40, "ttft_ms": 312.5, "total_ms": 1200.0, "attempts": 1, "failover": ["openai/work 200"],
    } | changes  # fmt: skip


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELMUX_STATE_DIR", str(tmp_path / "state"))


def default_file(tmp_path: Path) -> Path:
    """Where the usage records of `running(tmp_path)` go without the option."""
    return usage_path(tmp_path / "routes.yaml", os.environ)


def flow_with(summary_: dict[str, Any] | None, error: bool = False) -> Any:
    flow = tflow.tflow(resp=not error, err=error)
    flow.metadata["modelmux"] = {} if summary_ is None else {"summary": summary_}
    return flow


@contextmanager
def running(tmp_path: Path, **options: Any) -> Iterator[Usage]:
    """Settings and Usage configured from a routes.yaml in `tmp_path`, with `options`."""
    config = tmp_path / "routes.yaml"
    config.write_text(ROUTES)
    settings = Settings()
    addon = Usage(settings)
    with taddons.context(settings, addon) as context:
        context.configure(settings, modelmux_config=str(config))
        if options:
            context.configure(addon, **options)
        yield addon


def totals(addon: Usage, by: str = "all") -> dict[str, Any]:
    return addon.report(1, by)["total"]


def test_routed_flows_are_counted_once_and_the_rest_ignored(tmp_path: Path) -> None:
    with running(tmp_path) as addon:
        counted = flow_with(summary())
        addon.response(counted)
        addon.error(counted)  # a flow that also ends in error is still one request
        addon.error(flow_with(summary(status=502, error_type="api_error", ttft_ms=None), error=True))
        for kind in ("local", "intercepted", "refused"):
            addon.response(flow_with(summary(kind=kind)))
        addon.response(flow_with(None))
        addon.response(tflow.tflow(resp=True))  # not ours: no modelmux metadata at all
        assert totals(addon) == {
            "requests": 2, "errors": 1, "input_tokens": 240, "cached_tokens": 6000, "cache_write_tokens": 0,
            "output_tokens": 80, "ttft_p50_ms": 312.5, "ttft_p95_ms": 312.5,
        }  # fmt: skip
        assert counted.metadata["modelmux"]["summary"] == summary()  # the Dashboard's summary is left as it was


def test_records_go_to_the_state_directory_and_survive_a_restart(tmp_path: Path) -> None:
    file = default_file(tmp_path)
    assert file.parent == tmp_path / "state" and file.name.startswith("routes-") and file.suffix == ".jsonl"
    with running(tmp_path) as addon:
        assert addon.file is not None and addon.file.path == file
        addon.response(flow_with(summary()))
        addon.response(flow_with(summary(provider="zai", credential="main", model="glm-4.6", ttft_ms=80.0)))
        assert not file.exists()  # queued for the writer
        addon.done()
        before = addon.report(1, "all")
    lines = file.read_text().splitlines(keepends=True)
    assert [Record.parse(line) for line in lines] == [
        Record.of_summary(summary()),
        Record.of_summary(summary(provider="zai", credential="main", model="glm-4.6", ttft_ms=80.0)),
    ]
    assert "work" in lines[0] and "failover" not in lines[0]  # the label; no attempt trail
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    with running(tmp_path) as restarted:
        assert restarted.report(1, "all") == before
        assert before["total"]["requests"] == 2


def test_the_writer_appends_in_the_background(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usage_addon, "WRITE_INTERVAL", 0.01)
    file = default_file(tmp_path)

    async def scenario(addon: Usage) -> None:
        addon.running()
        addon.response(flow_with(summary()))
        for _ in range(500):
            if file.exists():
                break
            await asyncio.sleep(0.01)
        assert addon._writer is not None
        addon._writer.cancel()

    with running(tmp_path) as addon:
        asyncio.run(scenario(addon))
        assert [Record.parse(line) for line in file.read_text().splitlines()] == [Record.of_summary(summary())]


def test_an_empty_option_keeps_no_file_but_still_counts(tmp_path: Path) -> None:
    with running(tmp_path, modelmux_usage_file="") as addon:
        addon.response(flow_with(summary()))
        addon.done()
        assert addon.file is None
        assert totals(addon)["requests"] == 1
        assert addon.report(1, "all")["file"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["routes.yaml"]  # no state directory either


def test_another_file_is_read_when_the_option_names_it(tmp_path: Path) -> None:
    elsewhere = tmp_path / "stats" / "mine.jsonl"
    elsewhere.parent.mkdir()
    elsewhere.write_text(Record.of_summary(summary(output_tokens=9)).line())
    with running(tmp_path, modelmux_usage_file=str(elsewhere)) as addon:
        assert (totals(addon)["output_tokens"], addon.report(1, "all")["file"]) == (9, str(elsewhere))
        addon.response(flow_with(summary(output_tokens=1)))
        addon.done()
    assert len(elsewhere.read_text().splitlines()) == 2


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(exceptions.OptionsError, match=r"modelmux_usage_file: .* is a directory; name a file in it"):
        with running(tmp_path, modelmux_usage_file=str(tmp_path)):
            pass


def test_corrupt_lines_are_skipped_with_one_warning_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = Record.of_summary(summary()).line()
    file = default_file(tmp_path)
    file.parent.mkdir()
    file.write_text(good + "{oops\n" + good + "[]\n")
    with caplog.at_level(logging.WARNING), running(tmp_path) as addon:
        assert totals(addon)["requests"] == 2
        assert [p.document() for p in addon.problems()] == [{
            "file": str(file), "problem": f"2 lines are not usage records, skipped (the first: {file} line 2: not JSON)",
            "kept": "2 records", "set_aside": None,
        }]  # fmt: skip
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"usage records: {file}: 2 lines are not usage records, skipped (the first: {file} line 2: not JSON); "
        "kept 2 records"
    ]


def test_records_kept_beside_routes_yaml_move_to_the_state_directory(tmp_path: Path) -> None:
    """Where earlier versions wrote them (a checkout's routes.yaml got an untracked
    routes.usage.jsonl): moved once, counted, and nothing is written beside it again."""
    old = tmp_path / "routes.usage.jsonl"
    old.write_text(Record.of_summary(summary()).line())
    with running(tmp_path) as addon:
        assert totals(addon)["requests"] == 1
        addon.response(flow_with(summary()))
        addon.done()
    assert not old.exists()
    assert len(default_file(tmp_path).read_text().splitlines()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["routes.yaml", "state"]


def test_an_unwritable_file_is_reported_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    file = blocked / "u.jsonl"
    with caplog.at_level(logging.WARNING), running(tmp_path, modelmux_usage_file=str(file)) as addon:
        for _ in range(2):
            addon.response(flow_with(summary()))
            addon.flush()
        assert totals(addon)["requests"] == 2
        assert [p.document() for p in addon.problems()] == [
            {"file": str(file), "problem": f"cannot be read (Not a directory: {file}.1)",
             "kept": "nothing of earlier days: counting from now on", "set_aside": None},
            {"file": str(file), "problem": f"2 records could not be appended (the last time: File exists: {blocked})",
             "kept": "their counts in memory, until the gateway stops", "set_aside": None},
        ]  # fmt: skip
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"usage records: {file}: cannot be read (Not a directory: {file}.1); kept nothing of earlier days: counting "
        "from now on",
        f"cannot write usage records to {file} (File exists: {blocked}); today's counts will not survive a restart",
    ]


def test_records_dropped_by_a_stalled_writer_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The queue is bounded (a disk that stalls must not grow memory without end); what
    falls out of it is said once and reported, never dropped unseen."""
    monkeypatch.setattr(usage_addon, "QUEUE_LIMIT", 3)
    with caplog.at_level(logging.WARNING), running(tmp_path) as addon:
        for tokens in range(5):
            addon.response(flow_with(summary(output_tokens=tokens)))
        assert [p.document() for p in addon.problems()] == [{
            "file": str(default_file(tmp_path)), "problem": "2 records could not be appended (the last time: the "
            "writer fell 3 records behind)", "kept": "their counts in memory, until the gateway stops",
            "set_aside": None,
        }]  # fmt: skip
        addon.flush()
        assert totals(addon)["output_tokens"] == 0 + 1 + 2 + 3 + 4
    assert [Record.parse(line).output_tokens for line in default_file(tmp_path).read_text().splitlines()] == [2, 3, 4]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"cannot write usage records to {default_file(tmp_path)} (the writer fell 3 records behind); today's counts "
        "will not survive a restart"
    ]


def test_the_command(tmp_path: Path) -> None:
    with running(tmp_path) as addon:
        addon.response(flow_with(summary()))
        document = json.loads(addon.show(1, "provider"))
        assert document["rows"] == [{
            "provider": "openai", "requests": 1, "errors": 0, "input_tokens": 120, "cached_tokens": 3000,
            "cache_write_tokens": 0, "output_tokens": 40, "ttft_p50_ms": 312.5, "ttft_p95_ms": 312.5,
        }]  # fmt: skip
        with pytest.raises(exceptions.CommandError, match="days: a whole number from 1 to 366"):
            addon.show(0, "all")
