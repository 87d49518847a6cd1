"""Field order of the records the hot paths build positionally, checked once at import.

Why positional: CPython 3.11 matches each keyword argument against the parameter names, so a
keyword call of a ten-field dataclass costs about twice a positional one, and a story builds a
dozen records. A positional call would silently misassign if ``core.records`` reordered or
inserted fields, so the order is checked here: such a change fails loudly at import (update the
calls named below), never as wrong records.
"""

from __future__ import annotations

from dataclasses import fields

from core.records import Image, RelatedLink, Story, Virin

# Leading fields of each record, in the order the positional calls pass them.
ORDER: dict[type, tuple[str, ...]] = {
    Virin: ("raw", "shot_date", "branch_code", "branch", "originator_id", "sequence", "suffix"),  # virin.py
    Image: ("media_id", "page_url", "src", "download_url", "alt", "title", "caption", "credit", "size_bytes",
            "virin"),  # images.py
    RelatedLink: ("id", "url", "title"),  # story.py
    Story: ("id", "kind", "url", "type", "canonical_url", "title", "subtitle", "published", "updated", "byline",
            "authors", "organisation", "dateline", "paragraphs", "body_text", "images", "tags", "related",
            "spotlights"),  # story.py
}


def check_record_order() -> None:
    """Raise ImportError when a record's fields no longer start with the order the parsers pass."""
    for cls, expected in ORDER.items():
        names = tuple(f.name for f in fields(cls))
        if names[:len(expected)] != expected:
            raise ImportError(f"core.records.{cls.__name__} fields changed to {names}: update the positional "
                              f"calls in crawler.parsers (see crawler/parsers/record_order.py)")

