"""What was wrong with one of the gateway's own files (the credential state, the usage
records) and what it kept: logged once, then shown by /healthz and `modelmux status`
for as long as the gateway runs, so a loss is never silent.

The texts reach the log and /healthz, so they quote nothing read from the file beyond
what identifies a credential (provider and label, which status shows anyway): a hand
edit could have put anything there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

CORRUPT = ".corrupt"  # appended to a file's name to keep its bytes where the next save cannot reach


@dataclass(frozen=True)
class FileProblem:
    file: str
    problem: str  # what was wrong
    kept: str  # what the gateway kept
    set_aside: str | None = None  # where the file's original bytes are now

    def document(self) -> dict[str, str | None]:
        return asdict(self)

    def text(self) -> str:
        return line(self.document())


def line(problem: Mapping[str, Any]) -> str:
    """One problem as the log and `modelmux status` say it (from /healthz's document)."""
    aside = f"; the original is in {problem['set_aside']}" if problem.get("set_aside") else ""
    return f"{problem['file']}: {problem['problem']}; kept {problem['kept']}{aside}"


def listed(reasons: list[str], limit: int = 3) -> str:
    """The first `limit` reasons, and how many more: a file can hold thousands."""
    more = f"; and {len(reasons) - limit} more" if len(reasons) > limit else ""
    return "; ".join(reasons[:limit]) + more


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def reason(error: OSError) -> str:
    """The reason with the path it concerns, which may be a parent of the file's (and a
    rename's target)."""
    if not error.filename:
        return str(error.strerror or error)
    target = f" → {error.filename2}" if error.filename2 else ""
    return f"{error.strerror}: {error.filename}{target}"
