"""Pages that are not content: the Akamai block page and deliberately broken story markup.

None of these is a content change, and the crawler and monitor must learn to tell.
"""

from __future__ import annotations

import random
import re
import time
from email.utils import formatdate

from samplesite.response import Response

BREAK_MODES = ("truncate", "garbage", "redesign", "shell", "untemplated")

_AKAMAI = """<HTML><HEAD>
<TITLE>Access Denied</TITLE>
</HEAD><BODY>
<H1>Access Denied</H1>
{blank}
You don't have permission to access "{url}" on this server.<P>
Reference&#32;&#35;{ref}
<P>https&#58;&#47;&#47;errors&#46;edgesuite&#46;net&#47;{ref}</P>
</BODY>
</HTML>
"""


def _entities(text: str) -> str:
    """Akamai writes the URL with ':', '/' and '.' as numeric character references."""
    return text.replace(":", "&#58;").replace("/", "&#47;").replace(".", "&#46;")


def akamai_denied(url: str) -> Response:
    """The 403 an Akamai edge returns to clients its bot manager dislikes."""
    ref = f"18.{random.getrandbits(32):08x}.{int(time.time())}.{random.getrandbits(28):07x}"
    body = _AKAMAI.format(url=_entities(url), ref=_entities(ref), blank=" ").encode("ascii")
    headers = {
        "Server": "AkamaiGHost",
        "Mime-Version": "1.0",
        "Content-Type": "text/html",
        "Expires": formatdate(usegmt=True),
        "Cache-Control": "max-age=0, no-cache, no-store",
        "Pragma": "no-cache",
    }
    return Response(403, headers, body)


# Class names a redesign renames: a parser keyed on the old ones finds no title and no body.
_REDESIGN = {
    "maintitle": "page-heading",
    '"body"': '"article-text"',
    "media-inline": "figure-embed",
    "adetail": "story-shell",
    "mtitle": "fig-title",
    "caption": "fig-caption",
    "subtitle": "deck",
    "tags": "topics",
    "related": "more-stories",
}


def apply(page: str, mode: str) -> str:
    """Break a rendered story page the way ``mode`` says.

    truncate: cut mid-body (connection dropped); garbage: tag soup; redesign: new class names (a
    parser keyed on the old ones must fall back or fail); shell: an empty app shell (no title, no body);
    untemplated: a redesign that keeps nothing of the article template (no article element, no class
    or data attribute in the content), only the words and the page's og: meta.
    """
    if mode == "untemplated":
        return _untemplated(page)
    if mode == "redesign":
        for old, new in _REDESIGN.items():
            page = page.replace(old, new)
        return re.sub(r'<meta property="og:title"[^>]*>\n?', "", page)
    if mode == "garbage":
        return _garbage(page)
    if mode == "shell":
        return _shell(page)
    return _truncate(page)


def _untemplated(page: str) -> str:
    start, end = page.find("<main"), page.find("</main>")
    if start < 0 or end < 0:
        return page
    middle = re.sub(r'\s(?:class|id|data-[\w-]+|itemtype)="[^"]*"|\sitemscope(?:="")?(?=[\s>])', "", page[start:end])
    middle = re.sub(r"<(/?)(?:article|header)\b", r"<\1div", middle)
    return page[:start] + middle + page[end:]


def _shell(page: str) -> str:
    """A client-side-rendered shell: site chrome, no title, no article; only a script would fill it."""
    page = re.sub(r"<title>.*?</title>", "<title>U.S. Department of War</title>", page, flags=re.S)
    page = re.sub(r'<(meta (property|name)="(og|twitter):[^"]*"|link rel="canonical")[^>]*>\n?', "", page)
    app = ('<div id="app" data-loading="true"></div>\n'
           "<noscript>Please enable JavaScript to view this page.</noscript>\n")
    return re.sub(r"(<main[^>]*>).*?(</main>)", lambda m: m.group(1) + "\n" + app + m.group(2), page, flags=re.S)


def _truncate(page: str) -> str:
    """Cut the page inside the article body, mid-tag, as a dropped connection or a bad cache would."""
    start = page.find('<div class="body">')
    if start < 0:
        return page[: len(page) // 2]
    second_p = page.find("<p>", page.find("<p>", start) + 3)
    cut = second_p + 40 if second_p > 0 else start + 200
    return page[:cut] + '<div class="media-inl'


def _article_end(page: str) -> int:
    """Where the article ends: ``</article>`` (template before 2025), else the end of its DNN module."""
    end = page.find("</article>")
    return end if end >= 0 else page.find("<!-- End_Module_1663 -->")


def _garbage(page: str) -> str:
    """Unclosed and mis-nested tags, a stray closer and a bare ampersand: tag soup a browser still shows."""
    start = page.find('<div class="body">')
    end = _article_end(page)
    if start < 0 or end < 0:
        return page
    middle = page[start:end].replace("</p>", "").replace("</div>", "", 3)
    middle = middle.replace("<p>", "<p><b><i>", 1).replace("<h2>", "</span><h2 class=>", 1)
    return page[:start] + "</div></td>" + middle + " & <<br" + page[end:]
