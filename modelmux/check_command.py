"""`modelmux check`: is routes.yaml right, and does each provider answer each of its
credentials? Loading the file checks its schema and most cross-references (it raises
ConfigError: exit 2, as for every command); checks.problems adds the names clients are
handed; the probes try each credential once. Exit status 1 when any of these found
something. Nothing printed holds a secret: the output is scrubbed of every credential."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

from modelmux import checks, config, probe
from modelmux.credentials import scrub


def run(path: Path, offline: bool, as_json: bool, environ: Mapping[str, str], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    cfg = config.load(path, environ)
    problems = checks.problems(cfg)
    results = [] if offline else asyncio.run(probe.probe_all(probe.targets(cfg)))
    failed = bool(problems) or any(r.failed for r in results)
    if as_json:
        document = {"config": str(cfg.path), "ok": not failed, "problems": problems,
                    "probes": None if offline else [asdict(r) for r in results]}
        text = json.dumps(document, indent=2, ensure_ascii=False)
    else:
        text = "\n".join(describe(cfg.path, problems, results, offline))
    secrets = [c for provider in cfg.providers.values() for c in provider.credentials]
    out.write(scrub(text, secrets) + "\n")
    return 1 if failed else 0


def describe(path: Path, problems: list[str], results: list[probe.Result], offline: bool) -> list[str]:
    lines = [f"{path}: {problem}" for problem in problems] or [f"{path}: valid"]
    if not offline:
        lines += ["", *probe.table(results)]
    return lines
