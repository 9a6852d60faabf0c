"""Where modelmux keeps its files on each platform: the config directory (routes.yaml,
token files) and the state directory (background gateways' logs and pid files).

Pure: the platform (`sys.platform`), the environment and the home directory are
arguments, so every platform's answer is tested on any of them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

APP = "modelmux"
STATE_DIR_ENV = "MODELMUX_STATE_DIR"


def config_dir(environ: Mapping[str, str], home: Path | None = None, platform: str = sys.platform) -> Path:
    """Windows: %APPDATA%\\modelmux (roaming: a config follows the user). Elsewhere, macOS
    included: $XDG_CONFIG_HOME/modelmux, else ~/.config/modelmux, where command-line
    tools (gh, git, fish) keep theirs and where modelmux has always looked."""
    home = home or Path.home()
    if platform == "win32":
        return _windows_dir(environ, "APPDATA", home / "AppData" / "Roaming")
    return _xdg_dir(environ, "XDG_CONFIG_HOME", home / ".config")


def state_dir(environ: Mapping[str, str], home: Path | None = None, platform: str = sys.platform) -> Path:
    """$MODELMUX_STATE_DIR; else Windows: %LOCALAPPDATA%\\modelmux (logs stay on this
    machine); elsewhere $XDG_STATE_HOME/modelmux, else ~/.local/state/modelmux."""
    if environ.get(STATE_DIR_ENV):
        return Path(environ[STATE_DIR_ENV]).expanduser()
    home = home or Path.home()
    if platform == "win32":
        return _windows_dir(environ, "LOCALAPPDATA", home / "AppData" / "Local")
    return _xdg_dir(environ, "XDG_STATE_HOME", home / ".local" / "state")


def _windows_dir(environ: Mapping[str, str], variable: str, fallback: Path) -> Path:
    return Path(environ.get(variable) or fallback) / APP


def _xdg_dir(environ: Mapping[str, str], variable: str, fallback: Path) -> Path:
    # The XDG spec: a relative value is invalid and must be ignored.
    value = environ.get(variable, "")
    return (Path(value) if value and Path(value).is_absolute() else fallback) / APP
