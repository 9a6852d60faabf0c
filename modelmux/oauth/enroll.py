"""What a new token file becomes in routes.yaml: a credential added to the provider the
user named (a line inserted, comments kept, the result checked by the loader), or the
lines to add printed. Decided before the login, so a wrong --provider is named before
the browser opens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from modelmux.config import edit, loader
from modelmux.oauth.kinds import Kind
from modelmux.oauth.tokens import Token


class EnrollError(Exception):
    """--provider cannot take the credential; the message says why and what fits."""


@dataclass(frozen=True)
class Enrollment:
    kind: Kind
    label: str
    config_path: Path | None
    entry: str  # the credential as one flow mapping: {label: ..., oauth: ...}
    provider: str | None = None  # the provider to edit; None: print the lines
    why_print: str = ""  # when printing: why, and where they go
    present: bool = False  # routes.yaml already names this token file: nothing to do

    @classmethod
    def plan(cls, kind: Kind, label: str, token_path: Path, path: Path | None, provider_name: str | None) -> Enrollment:
        """Raises EnrollError when --provider (`provider_name`) cannot take the credential."""
        entry = edit.oauth_entry(label, written_path(token_path, path))
        plan = cls(kind, label, path, entry)
        if path is None or not path.is_file():
            if provider_name:
                raise EnrollError(f"--provider {provider_name}: no routes.yaml found to add it to; pass --config PATH")
            return plan.printing(f"no routes.yaml of yours was found (--config PATH); under a provider with "
                                 f"protocol: {kind.protocol} add")  # fmt: skip
        try:
            cfg = loader.load(path)
        except loader.ConfigError as e:
            if provider_name:
                raise EnrollError(f"--provider {provider_name}: {path} does not load; fix it first:\n{e}") from e
            return plan.printing(f"{path} does not load as it is; under a provider with protocol: {kind.protocol} add")
        fitting = [p.name for p in cfg.providers.values()
                   if p.protocol == kind.protocol and not (p.passthrough or p.keyless)]
        if provider_name is None:
            where = (f"one of its providers of protocol {kind.protocol} ({', '.join(fitting)}), or rerun with "
                     "--provider NAME to have it added," if fitting else
                     f"a provider with protocol: {kind.protocol} (it has none yet)")  # fmt: skip
            return plan.printing(f"to use the login, under {where} in {path} add")
        provider = cfg.providers.get(provider_name)
        if provider is None or provider.protocol != kind.protocol or provider.passthrough or provider.keyless:
            what = ("is not a provider there" if provider is None else
                    f"has protocol {provider.protocol}" if provider.protocol != kind.protocol else
                    "takes no credential (auth: none)" if provider.keyless else
                    "passes the client's own token on (auth: passthrough)")  # fmt: skip
            fits = f"providers that fit: {', '.join(fitting)}" if fitting else f"none has protocol {kind.protocol}"
            raise EnrollError(f"--provider {provider_name} {what} in {path}; a {kind.name} login needs a provider "
                              f"with protocol {kind.protocol} and credentials ({fits})")  # fmt: skip
        same = [c for c in provider.credentials if c.label == label]
        if same and not (same[0].oauth and same[0].oauth.path == token_path.expanduser().resolve()):
            raise EnrollError(f"provider {provider.name} in {path} already has a credential '{label}'; "
                              "pick another --label")  # fmt: skip
        return cls(kind, label, path, entry, provider=provider.name, present=bool(same))

    def printing(self, why: str) -> Enrollment:
        return Enrollment(self.kind, self.label, self.config_path, self.entry, why_print=why)

    def apply(self, token: Token, out: IO[str], say: Callable[[str], None]) -> None:
        """Edit routes.yaml or print the lines: `out` gets only the YAML lines, `say` the rest."""
        missing = [name for name in self.kind.needs if getattr(token, name) is None]
        if missing:
            # Google logins whose Cloud project Code Assist did not give (login.with_project said why).
            self.print_lines(out, say, f"the login gave no {', '.join(missing)}, which {self.kind.name} requests "
                                       f"need, so routes.yaml was left alone; add \"project_id\": \"YOUR-PROJECT\" "
                                       "(the Google Cloud project of this login) to the token file, then add")
        elif self.present:
            say(f"{self.config_path} already names this token file for provider {self.provider}; "
                "the new token is used from now on")  # fmt: skip
        elif self.provider is None or self.config_path is None:
            self.print_lines(out, say, self.why_print)
        else:
            try:
                edit.add_credential(self.config_path, self.provider, self.entry)
            except (edit.EditError, OSError) as e:
                self.print_lines(out, say, f"could not add it to {self.config_path} ({e}); under provider "
                                           f"{self.provider} add")  # fmt: skip
                return
            say(f"added credential '{self.label}' to provider {self.provider} in {self.config_path}")

    def print_lines(self, out: IO[str], say: Callable[[str], None], why: str) -> None:
        say(f"{why}:")
        out.write(f"    credentials:\n      - {self.entry}\n")
        out.flush()


def written_path(token_path: Path, config_path: Path | None) -> str:
    """How routes.yaml names the token file: relative to it when beside it (the loader
    resolves relative paths from routes.yaml's directory), else with ~ for home."""
    absolute = token_path.expanduser().resolve()
    if config_path is not None:
        base = config_path.expanduser().resolve().parent
        if absolute.is_relative_to(base):
            return str(absolute.relative_to(base))
    home = Path.home().resolve()
    return f"~/{absolute.relative_to(home)}" if absolute.is_relative_to(home) else str(absolute)
