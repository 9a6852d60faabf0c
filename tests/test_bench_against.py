"""bench/against.py: the tree it compares against, and the table it makes of the samples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # bench/ is the checkout's, not an installed package

from bench import against  # noqa: E402
from bench.targets import DIRECT, MITMDUMP_BARE  # noqa: E402

needs_git = pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout")


@needs_git
def test_a_revision_is_exported_as_committed(tmp_path: Path) -> None:
    tree = against.export("HEAD", tmp_path / "against")
    assert (tree / "addons" / "router.py").read_bytes() == subprocess.run(
        ["git", "-C", str(REPO), "show", "HEAD:addons/router.py"], capture_output=True, check=True).stdout
    assert not (tree / ".git").exists() and not tmp_path.joinpath("against.tar").exists()


@needs_git
def test_an_unknown_revision_is_refused_before_anything_starts() -> None:
    assert against.unknown("HEAD") is None
    assert against.unknown("no-such-revision-anywhere") == f"not a commit of {REPO}"
    run = subprocess.run([sys.executable, "-m", "bench", "--against", "no-such-revision-anywhere"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.endswith(f"error: --against no-such-revision-anywhere: not a commit of {REPO}\n")


def test_the_table_sets_each_tree_beside_the_other_against_the_same_baseline() -> None:
    ms = 1e-3
    latency = {(DIRECT.key, False): [1 * ms] * 3, (MITMDUMP_BARE.key, False): [3 * ms] * 3}
    cpu = {MITMDUMP_BARE.key: 2 * ms}
    for i, target in enumerate(against.COMPARED):
        latency[against.at(target, "v1").key, False] = [(5 + i) * ms] * 3  # REV: +4, +5, ... above direct
        latency[target.key, False] = [(4 + i) * ms] * 3  # this checkout: 1 ms less each
        cpu[against.at(target, "v1").key], cpu[target.key] = 4 * ms, 3 * ms
    text = against.table({"latency": latency, "ttft": {}, "cpu": cpu}, "v1").plain()
    lines = text.splitlines()
    assert lines[0].startswith("p50, ms above direct") and lines[0].endswith("gemini")
    assert "JSON answer (mitmdump +2.00)" in lines
    v1 = next(line for line in lines if line.strip().startswith("v1"))
    assert v1.split()[1:3] == ["+4.00", "(2.00×)"]
    change = next(line for line in lines if line.strip().startswith("change"))
    assert change.split()[1:4] == ["-1.00", "ms", "(-25.0%)"]
    assert "stream of 50 deltas" not in text and "time to first token" not in text  # not measured: no rows
    assert "  mitmdump: 2.00" in lines
