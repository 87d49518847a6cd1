"""Small SQL-building helpers shared by the query modules; values are always bound, never formatted."""

from __future__ import annotations

from typing import Any


def where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """``WHERE a AND b`` from ``(clause with one ?, value)`` pairs whose value is not None (or '')."""
    used = [(clause, value) for clause, value in conditions if value is not None and value != ""]
    if not used:
        return "", []
    return "WHERE " + " AND ".join(clause for clause, _ in used), [value for _, value in used]
