"""Small SQL-building helpers shared by the query modules; values are always bound, never formatted."""

from __future__ import annotations

from typing import Any


def where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """``WHERE a AND b`` from ``(clause with one ?, value)`` pairs whose value is not None (or '')."""
    used = [(clause, value) for clause, value in conditions if value is not None and value != ""]
    if not used:
        return "", []
    return "WHERE " + " AND ".join(clause for clause, _ in used), [value for _, value in used]


# A ``known_pages k`` row whose page no fetch has archived. The archive tables are asked too, so a page
# stored by any path (an older writer, a re-parse) never stays due for ever.
NOT_ARCHIVED = """k.archived_at IS NULL AND NOT EXISTS (
    SELECT 1 FROM stories s WHERE k.page_type = 'story' AND s.id = k.id
    UNION ALL SELECT 1 FROM images i WHERE k.page_type = 'photo' AND i.media_id = k.id AND i.source = 'photo_page')"""
