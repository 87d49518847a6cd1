"""The body of a page whose template is gone (a redesign), from a generic content extractor.

trafilatura finds the main text of a page by its own rules, whatever the class names; it is the
best of the extractors measured on the site's pages. Its paragraphs are filtered with the same
rules as the template's (image labels and site furniture are never paragraphs). A record built
this way says ``extraction: "generic"``, so the operator learns that the template needs fixing
(``parser_degraded``) and the monitor does not take the switch of method for an edit.
"""

from __future__ import annotations

import logging

from lxml import etree

from crawler.parsers.body import is_furniture_text
from crawler.parsers.text import norm

log = logging.getLogger(__name__)

# Less main text than this is not a story body but leftovers of page chrome (an app shell).
MIN_BODY_CHARS = 80
_XML_PARSER = etree.XMLParser(recover=True, no_network=True, resolve_entities=False)


def generic_paragraphs(html: str, url: str, title: str | None = None) -> list[str]:
    """The page's main text as paragraphs (trafilatura's paragraphs, list items, table rows and
    sub-heads, in order); [] when it finds no body worth the name.

    trafilatura is imported here, on the first page whose template is gone: its import (courlan,
    htmldate, justext) takes about a tenth of a second that every crawl, archive writer and CLI
    command would otherwise pay at start-up to parse pages that the template tables read."""
    import trafilatura

    try:
        xml = trafilatura.extract(html, url=url or None, output_format="xml", include_comments=False,
                                  include_tables=True, include_images=False, include_links=False,
                                  favor_precision=True, deduplicate=False)
    except Exception:  # a third-party extractor must not take a crawl down with it
        log.exception("generic extraction failed on %s", url)
        return []
    if not xml:
        return []
    root = etree.fromstring(xml.encode("utf-8"), _XML_PARSER)
    for lb in root.iter("lb"):  # trafilatura's line break inside a paragraph
        lb.tail = " " + (lb.tail or "")
    main = root.find("main") if root is not None else None
    if main is None:
        return []
    paragraphs: list[str] = []
    for el in main:
        for block in _blocks(el):
            text = norm("".join(block.itertext()))
            if text and text != title and not is_furniture_text(text):
                paragraphs.append(text)
    if sum(len(p) for p in paragraphs) < MIN_BODY_CHARS:
        return []
    return paragraphs


def _blocks(el: etree._Element) -> list[etree._Element]:
    """One element per paragraph: a list's items, a table's rows, a quote's paragraphs."""
    if el.tag == "list":
        return [item for item in el.iter("item")]
    if el.tag == "table":
        return [row for row in el.iter("row")]
    if el.tag == "quote" and el.find("p") is not None:
        return list(el.iter("p"))
    return [el]
