"""Where modelmux keeps its files on each platform: the config directory (routes.yaml,
token files) and the state directory (background gateways' logs and pid files, and
each routes.yaml's credential state and usage records).

Pure: the platform (`sys.platform`), the environment and the home directory are
arguments, so every platform's answer is tested on any of them.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

import modelmux

logger = logging.getLogger(__name__)

APP = "modelmux"
STATE_DIR_ENV = "MODELMUX_STATE_DIR"
CONFIG_ENV = "MODELMUX_CONFIG"
CONFIG_NAME = "routes.yaml"
# The installed package (or the checkout's modelmux/), where the bundled example is.
PACKAGE = Path(modelmux.__file__).resolve().parent


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


def config_state(config: Path, suffix: str, environ: Mapping[str, str], home: Path | None = None,
                 platform: str = sys.platform) -> Path:
    """Where a routes.yaml's own state goes (`.state.json`: credential cooldowns;
    `.usage.jsonl`: usage records): the state directory, never beside the file, which
    may sit in a checkout, a project or the installed package. The name is the file's
    stem and a digest of its absolute path, so two configs never share state."""
    absolute = config.expanduser().resolve()
    digest = hashlib.sha256(str(absolute).encode()).hexdigest()[:8]
    return state_dir(environ, home, platform) / f"{absolute.stem}-{digest}{suffix}"


def adopt_beside(config: Path, suffix: str, state: Path) -> None:
    """Move the file of this kind that modelmux kept beside the config before its state
    moved to the state directory (`routes.state.json`), so no cooldown or usage record
    is lost; left alone when `state` already exists."""
    old = config.expanduser().with_name(f"{config.stem}{suffix}")
    if not old.is_file() or state.exists():
        return
    try:
        state.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(old, state)
    except OSError as e:
        logger.warning("cannot move %s to %s (%s); starting %s afresh", old, state, e.strerror, state.name)
        return
    logger.info("moved %s to %s (modelmux keeps state in its state directory)", old, state)


def _windows_dir(environ: Mapping[str, str], variable: str, fallback: Path) -> Path:
    return Path(environ.get(variable) or fallback) / APP


def _xdg_dir(environ: Mapping[str, str], variable: str, fallback: Path) -> Path:
    # The XDG spec: a relative value is invalid and must be ignored.
    value = environ.get(variable, "")
    return (Path(value) if value and Path(value).is_absolute() else fallback) / APP


def bundled_config() -> Path:
    """The example routes.yaml that ships with modelmux: the wheel's copy inside the
    package (setup.py puts it there), else the checkout's (an editable install)."""
    packaged = PACKAGE / CONFIG_NAME
    return packaged if packaged.is_file() else PACKAGE.parent / CONFIG_NAME


def find_config(
    explicit: str | None, environ: Mapping[str, str], cwd: Path | None = None, home: Path | None = None
) -> Path:
    """--config, then $MODELMUX_CONFIG, ./routes.yaml, routes.yaml in the config directory
    (`config_dir`), and last the bundled example. An explicit path is returned even if
    missing, so the loader's error names it. The gateway (addons/chain.py), the command
    line and the logins all find it so."""
    if explicit:
        return Path(explicit).expanduser()
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]).expanduser()
    candidates = [
        (cwd or Path.cwd()) / CONFIG_NAME,
        config_dir(environ, home) / CONFIG_NAME,
    ]
    return next((path for path in candidates if path.is_file()), bundled_config())
