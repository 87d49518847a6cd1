"""Dates the way the site prints them."""

from __future__ import annotations

from datetime import date

_MONTHS_AP = ["Jan.", "Feb.", "March", "April", "May", "June", "July", "Aug.", "Sept.", "Oct.", "Nov.", "Dec."]


def ap_date(day: str | date) -> str:
    """AP style, as on story pages and listings: ``Dec. 7, 2023``, ``March 3, 2024``."""
    d = day if isinstance(day, date) else date.fromisoformat(day[:10])
    return f"{_MONTHS_AP[d.month - 1]} {d.day}, {d.year}"

_MONTHS_FULL = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                "November", "December"]


def full_date(day: str | date) -> str:
    """Month written out, as in a 2025 Contracts page's og:title: ``September 30, 2025``."""
    d = day if isinstance(day, date) else date.fromisoformat(day[:10])
    return f"{_MONTHS_FULL[d.month - 1]} {d.day}, {d.year}"
