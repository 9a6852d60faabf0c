"""`modelmux check --deep`'s words: what it will send (printed before it sends anything),
each provider's findings with their evidence, the routes.yaml lines that follow, and the
summary. Pure; cli/check.py scrubs what it prints."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from modelmux.cli import probe
from modelmux.cli.capabilities import requests
from modelmux.cli.capabilities.findings import Report
from modelmux.cli.status_report import aligned

HEADER = ["capability", "found", "evidence"]


def intro(target: probe.Target, timeout: float) -> str:
    """What the deep check of `target` will send, before it sends it."""
    provider = target.provider
    head = f"deep check of {provider.name} ({provider.protocol})"
    if provider.passthrough:
        return f"{head}: nothing to probe (auth: passthrough)"
    if target.model is None:
        return f"{head}: not probed, no model named"
    steps = requests.plan(provider, target.credential)
    return (f"{head}, model {target.model}, credential {probe.label(target)}: at most {len(steps)} requests, "
            f"each waiting at most {timeout:g} s: {', '.join(steps)}")  # fmt: skip


def describe(report: Report) -> list[str]:
    """One provider's section: its findings and the lines that follow, or why there are none."""
    if not report.plan or not report.checked:
        return [f"{report.provider}: {report.note}"]
    head = f"{report.provider}, {report.model}: {report.sent} of {len(report.plan)} requests sent"
    if report.failed:
        return [f"{head}; FAILED: {report.note}"]
    rows = [HEADER] + [[f.capability, f.found, f.evidence] for f in report.findings]
    return [head, *aligned(rows), *lines(report)]


def lines(report: Report) -> list[str]:
    """The routes.yaml lines that follow, indented as they go in the file."""
    out = ["routes.yaml lines that follow (not written to the file):"]
    if report.provider_lines:
        out += [f"  providers.{report.provider}:", *(f"    {line}" for line in report.provider_lines)]
    else:
        out.append(f"  providers.{report.provider}: nothing to change")
    if report.model_lines:
        out.append(f"  providers.{report.provider}.models (this model's entry):")
        out += [f"    {line}" for line in report.model_lines]
    return out


def summary(reports: list[Report]) -> str:
    probed = [r for r in reports if r.plan and r.checked]
    line = f"deep check: {len(probed)} of {len(reports)} providers probed"
    wrong = False
    for word, names in (
        ("failed", [r.provider for r in reports if r.failed]),
        ("incomplete (a probe got no answer)", [r.provider for r in probed if not r.failed and not r.complete]),
        ("NOT CHECKED", [r.provider for r in reports if not r.checked]),
        ("nothing to probe", [r.provider for r in reports if not r.plan]),
    ):
        if names:
            line += f"; {word}: {', '.join(names)}"
            wrong = wrong or word != "nothing to probe"
    return line + ("; all answered" if probed and not wrong else "")


def as_json(report: Report) -> dict[str, Any]:
    return {**asdict(report), "complete": report.complete}
