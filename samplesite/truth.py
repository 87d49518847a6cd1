"""What a careful reader reads on a sample-site story page, whatever markup variant serves it.

Why: the site renders every story from data, so it knows the truth its pages print. Tests and
benchmarks compare parser records with this instead of with another parser's output, so a markup
variant that fools the parser shows up as a wrong field, not as "both agree".
"""

from __future__ import annotations

import html
import re
from typing import Any

from samplesite.content import Content
from samplesite.dates import ap_date

_TAG_RE = re.compile(r"<[^>]+>")


def plain_text(fragment: str) -> str:
    """The text of an HTML fragment as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(_TAG_RE.sub("", fragment)).split())


def expected_story(content: Content, story_id: int) -> dict[str, Any]:
    """title, published (ISO date), paragraphs (sub-heads included, in order) and images
    (media_id, virin, title, caption, credit) of one story."""
    story = content.story(story_id)
    if story is None:
        raise KeyError(story_id)
    paragraphs = []
    images = []
    for block in story["body"]:
        if block["type"] == "p":
            text = plain_text(block["html"])
            if text:
                paragraphs.append(text)
        elif block["type"] == "h2":
            paragraphs.append(" ".join(block["text"].split()))
        elif block["type"] == "image":
            img = content.image(block["media_id"])
            if img is not None:
                images.append({"media_id": img["media_id"], "virin": img["virin"], "title": img["title"],
                               "caption": img["caption"], "credit": img["credit"]})
    return {"id": story["id"], "kind": story["kind"], "title": story["title"], "published": story["published"],
            "published_ap": ap_date(story["published"]), "paragraphs": paragraphs, "images": images}
