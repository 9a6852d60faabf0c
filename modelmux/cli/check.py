"""`modelmux check`: is routes.yaml right, and does each provider answer each of its
credentials? Loading the file checks its schema and most cross-references (it raises
ConfigError: exit 2, as for every command); checks.problems adds the names clients are
handed; the probes (probe.py) ask each provider and credential. Exit status 1 when any
of these found something wrong, 3 when nothing did but some provider could not be
checked at all (a pass would claim more than was seen). `--deep` probes what providers
can do instead (capabilities/), with the same exit statuses. Nothing printed holds a
secret: the output is scrubbed of every credential."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from modelmux.cli import probe
from modelmux.cli.capabilities import deep, report
from modelmux.cli.status_report import aligned
from modelmux.config import checks, loader, model_facts
from modelmux.secrets import configured, scrub

PASSED, FAILED, NOT_CHECKED = 0, 1, 3  # 2: routes.yaml does not load, or --provider/--model name nothing (cli/main.py)


@dataclass(frozen=True)
class Deep:
    """`--deep`, narrowed to a provider and/or a model; `timeout`: seconds each request waits."""

    provider: str | None = None
    model: str | None = None
    timeout: float = deep.TIMEOUT


def run(path: Path, offline: bool, as_json: bool, environ: Mapping[str, str], out: TextIO | None = None,
        capabilities: Deep | None = None) -> int:
    out = out or sys.stdout
    cfg = loader.load(path, environ)
    problems = checks.problems(cfg)
    if capabilities is not None:
        return run_deep(cfg, problems, as_json, capabilities, out)
    found: dict[str, Mapping[str, loader.ModelFacts]] = {}
    results = [] if offline else asyncio.run(probe.probe_all(probe.targets(cfg), found))
    if found:
        remember(cfg, found)
    status = exit_status(problems, results)
    lines = summary(list(cfg.providers), results, offline)
    if as_json:
        document = {"config": str(cfg.path), "ok": status == PASSED, "exit_status": status, "problems": problems,
                    "probes": None if offline else [asdict(r) for r in results],
                    "not_checked": None if offline else [_unchecked(r) for r in results if not r.checked],
                    "summary": lines[0]}  # fmt: skip
        text = json.dumps(document, indent=2, ensure_ascii=False)
    else:
        text = "\n".join(describe(cfg.path, problems, results, offline) + ["", *lines])
    out.write(scrub(text, configured(cfg)) + "\n")
    return status


def remember(cfg: loader.Config, found: Mapping[str, Mapping[str, loader.ModelFacts]]) -> None:
    """Keep what the model lists reported where the gateway keeps it (in the state
    directory of this process's environment), for the launcher: a check is often run
    before the first `modelmux run`. A file that cannot be written costs only that, so
    it is not reported."""
    path = model_facts.discovered_path(cfg.path)
    discovered = model_facts.updated(model_facts.load_discovered(path), found, cfg.providers)
    with contextlib.suppress(OSError):
        model_facts.save_discovered(path, discovered)


def run_deep(cfg: loader.Config, problems: list[str], as_json: bool, options: Deep, out: TextIO) -> int:
    """The capability probes (capabilities/deep.py) instead of the credential table. What
    will be sent is printed before anything is."""
    secrets = configured(cfg)
    targets = deep.targets(cfg, options.provider, options.model)  # ValueError: a name that is not there
    intro = [report.intro(t, options.timeout) for t in targets]
    if not as_json:
        out.write(scrub("\n".join(validity(cfg.path, problems) + ["", *intro, ""]), secrets) + "\n")
        out.flush()
    reports = asyncio.run(deep.check_all(targets, options.timeout))
    if problems or any(r.failed for r in reports):
        status = FAILED
    else:
        status = NOT_CHECKED if any(r.plan and not r.complete for r in reports) else PASSED
    last = report.summary(reports)
    if as_json:
        document = {"config": str(cfg.path), "ok": status == PASSED, "exit_status": status, "problems": problems,
                    "plan": intro, "deep": [report.as_json(r) for r in reports], "summary": last}  # fmt: skip
        text = json.dumps(document, indent=2, ensure_ascii=False)
    else:
        text = "\n".join([line for r in reports for line in [*report.describe(r), ""]] + [last])
    out.write(scrub(text, secrets) + "\n")
    return status


def exit_status(problems: list[str], results: list[probe.Result]) -> int:
    if problems or any(r.failed for r in results):
        return FAILED
    return NOT_CHECKED if any(not r.checked for r in results) else PASSED


def validity(path: Path, problems: list[str]) -> list[str]:
    return [f"{path}: {problem}" for problem in problems] or [f"{path}: valid"]


def describe(path: Path, problems: list[str], results: list[probe.Result], offline: bool) -> list[str]:
    lines = validity(path, problems)
    if not offline:
        lines += ["", *table(results)]
    return lines


def summary(providers: list[str], results: list[probe.Result], offline: bool) -> list[str]:
    """The last word: how many providers were checked, which failed, and one line per
    credential that could not be checked at all, with why and the fix, so that a
    pass is never claimed for what nobody asked."""
    if offline:
        return [f"--offline: no provider was probed ({', '.join(providers)})"]
    failed = list(dict.fromkeys(r.provider for r in results if r.failed))
    unchecked = [r for r in results if not r.checked]
    missing = list(dict.fromkeys(r.provider for r in unchecked))
    line = f"{len(providers) - len(missing)} of {len(providers)} providers checked"
    if failed:
        line += f"; failed: {', '.join(failed)}"
    if missing:
        line += f"; NOT CHECKED: {', '.join(missing)}"
    if not failed and not missing:
        line += "; all passed"
    return [line] + [f"not checked: {r.provider}, {r.credential}: {r.note}" for r in unchecked]


def _unchecked(result: probe.Result) -> dict[str, str]:
    return {"provider": result.provider, "credential": result.credential, "reason": result.note}


HEADER = ["provider", "credential", "model", "reachable", "auth ok", "latency", "model found", "listed", "note"]


def table(results: list[probe.Result]) -> list[str]:
    rows = [HEADER] + [
        [r.provider, r.credential, r.model or "-", _yes(r.reachable), _yes(r.auth_ok),
         f"{r.latency_ms} ms" if r.latency_ms is not None else "-", _yes(r.model_found),
         str(r.listed) if r.listed is not None else "-", r.note]
        for r in results
    ]  # fmt: skip
    return aligned(rows)


def _yes(value: bool | None) -> str:
    return "-" if value is None else "yes" if value else "no"
