"""Loaded after modelmux's script: raises on `x-test-raise: last` (raising.py)."""

from raising import Raising

addons = [Raising("last")]
