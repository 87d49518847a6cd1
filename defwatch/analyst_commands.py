"""The analysts' commands over the archive: search, show, history, diff, images, export, stats."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

REGISTRY: list[Callable[[Any], None]] = []
