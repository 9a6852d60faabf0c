"""Loaded before modelmux's script: raises on `x-test-raise: first` (raising.py)."""

from raising import Raising

addons = [Raising("first")]
