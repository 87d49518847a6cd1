"""The body of a story page: what a reader reads, as paragraphs, and the inline images and
spotlight links found on the way, in one walk in document order.

Paragraphs are whatever the page separates them with: ``<p>`` (and other text blocks), ``<br>``
(the older template), or ``<div>``. Image, video and gallery blocks, their labels, share menus,
scripts and styles are never paragraphs, at any depth. Tag soup (unclosed tags that nest the rest
of the body inside a paragraph or an image block) is read as a browser shows it, so a markup-only
breakage is not reported as an edit.

:data:`BODY_BLOCKS` is the body's template table (class token or tag -> role).
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import islice

from core.records import Image
from crawler.parsers import images
from crawler.parsers.dom import Element
from crawler.parsers.extract import BLOCK_TAGS, SKIP_TAGS, abs_url, text_of
from crawler.parsers.text import clean_dateline, norm

# Blocks inside the body that are not paragraphs, by class token (image blocks are read as images,
# spotlights as links, the rest is site furniture).
BODY_BLOCKS: dict[str, str] = {
    "media-inline": "image", "spotlight-inline": "spotlight", "spotlight": "spotlight",
    "media-inline-video": "skip", "video-control": "skip", "media-inline-audio": "skip", "gallery": "skip",
    "social": "skip", "social-top": "skip", "social-bottom": "skip", "social-block": "skip", "share": "skip",
    "a2a_kit": "skip", "addtoany": "skip", "more-share": "skip", "sr-only": "skip", "visually-hidden": "skip",
    "print": "skip", "tags": "skip", "related": "skip", "media-inline-popup": "skip", "breadcrumb": "skip",
    "disclaimer": "skip", "header": "skip", "footer": "skip", "caption": "skip", "credit": "skip", "virin": "skip",
    "mtitle": "skip", "minfo": "skip", "image-wrapper": "skip", "category": "skip", "byline": "skip",
    "date": "skip", "info": "skip", "dateline": "skip", "maintitle": "skip", "subtitle": "skip",
    # war.gov 2025 chrome after the article, which unclosed wrappers in a body pull into it: another
    # DNN module (the newsletter box), the footer
    "DnnModule": "skip", "subscribe": "skip", "footer-inner": "skip", "skin-footer-banner": "skip",
}
# Class token fragments of furniture whatever the exact name (share menus, galleries, video players).
_SKIP_FRAGMENTS = ("a2a", "addtoany", "share", "social", "gallery", "video", "audio", "carousel", "slideshow")
BODY_TAGS: dict[str, str] = {
    "figure": "image", "header": "skip", "footer": "skip", "nav": "skip", "aside": "skip", "figcaption": "skip",
    "h1": "skip", "form": "skip", "img": "img",
}
# Blocks whose text is one paragraph (or sub-heading) of the story.
TEXT_BLOCKS = frozenset({"p", "h2", "h3", "h4", "h5", "h6", "li", "pre", "dd", "dt", "tr", "blockquote", "address"})
_BLOCK_DESCENDANTS = TEXT_BLOCKS | {"div", "section", "article", "ul", "ol", "dl", "table", "figure", "center",
                                    "main", "aside", "header", "footer", "nav", "form", "hr"}
_MAX_SOUP_DEPTH = 100

_SPOTLIGHT_LABEL_RE = re.compile(r"^\s*Spotlight\s*:\s*", re.I)
_DATELINE_END_RE = re.compile(r"(?:--|—|–)\s*$")
# Paragraph texts that are site furniture even when they sit inside the body region.
_BOILERPLATE_TEXT_RE = re.compile(
    r"^(?:Choose which (?:Defense|War)\.gov products you want delivered to your inbox\.?|"
    r"Subscribe to .{0,40}(?:news|updates|products)|Related Stories|Tags?:?|Share|Print|Email|Copy Link)$",
    re.I,
)


def is_furniture_text(text: str) -> bool:
    """A line that is never story text wherever it stands: an image label, a subscription box,
    a share button, stray punctuation left by broken markup ("&", "|")."""
    return (images.is_label_line(text) or _BOILERPLATE_TEXT_RE.match(text) is not None
            or not any(c.isalnum() for c in text))


class TooDeep(Exception):
    """Markup too deeply nested to be read (image blocks nested in soup past _MAX_SOUP_DEPTH)."""


def body_role(el: Element) -> str | None:
    """image / spotlight / skip / img for special blocks of the body, None for text and containers."""
    tag = el.tag
    if not isinstance(tag, str) or tag in SKIP_TAGS:
        return "skip"
    classes = el.get("class")
    role = _class_role(classes) if classes else None
    if role is None:
        role = BODY_TAGS.get(tag)
    if role is None and tag in _UNCLASSED_BLOCKS and (el.get("data-media-id") or _looks_like_image_block(el)):
        role = "image"
    return role


@lru_cache(maxsize=1024)
def _class_role(classes: str) -> str | None:
    """The role a class attribute gives (sites reuse a few dozen class strings: memoized)."""
    tokens = classes.split()
    roles = [BODY_BLOCKS[c] for c in tokens if c in BODY_BLOCKS]
    if "skip" in roles and "image" in roles:  # media-inline media-inline-video: a video, not an image
        return "skip"
    if roles:
        return roles[0]
    if any(fragment in c.lower() for c in tokens for fragment in _SKIP_FRAGMENTS):
        return "skip"
    return None


_UNCLASSED_BLOCKS = frozenset({"div", "section", "span", "table"})
# A caption ending with its credit: "... (U.S. Army photo by Sgt. Jane Roe)", "(Courtesy photo)".
_CREDIT_IN_CAPTION_RE = re.compile(r"\([^()]*\b(?:photo|photos|illustration|graphic|image)\b[^()]*\)\s*$", re.I)
_IMAGE_BLOCK_MAX_ELEMENTS = 40


def _looks_like_image_block(el: Element) -> bool:
    """An unclassed block holding one image, its printed labels and at most a caption (a template
    we have not seen); a container of the story's paragraphs around an image is not one."""
    if len(list(islice(el.iter(), _IMAGE_BLOCK_MAX_ELEMENTS + 1))) > _IMAGE_BLOCK_MAX_ELEMENTS:
        return False  # an image and its labels are a few elements; a container of the story is more
    imgs = [img for img in el.iter("img") if not any(a.tag == "noscript" for a in img.iterancestors())]
    if len(imgs) != 1 or next(el.iterdescendants("h2", "h3", "h4", "h5", "h6", "ul", "ol", "table"), None) is not None:
        return False
    lines = [line for line in (norm(t) for t in el.itertext()) if line]
    if len(" ".join(lines)) > 800 or not any(images.is_label_line(line) or "VIRIN:" in line
                                             or _CREDIT_IN_CAPTION_RE.search(line) for line in lines):
        return False
    prose = [t for t in (text_of(p) for p in el.iter("p")) if t and not images.is_label_line(t)]
    return len(prose) <= 2


class BodyReader:
    """Paragraphs, inline images and spotlight links of the body, in one walk.

    ``blocks_only``: only text blocks (p, h2-h6, li...) count, loose text is layout; used when the
    story has no body element and the whole article is read (its other text is page furniture).
    """

    def __init__(self, base_url: str, root: Element | None, title: str | None = None, *,
                 blocks_only: bool = False, skip: set[Element] | None = None) -> None:
        self.url = base_url
        self.title = title
        self.blocks_only = blocks_only
        self.skip = skip or set()
        self.paragraphs: list[str] = []
        self.images: list[Image] = []
        self.spotlights: list[dict[str, str]] = []
        self.dateline: str | None = None
        self._buf: list[str] = []
        self._lead: str | None = None  # text of a bold element opening the current line
        self._depth = 0
        self._after_image = False  # the last thing read was an image block
        if root is not None:
            self._read(root, blocks_only)
            self._flush()

    # -- the walk ---------------------------------------------------------------------------

    def _read(self, root: Element, blocks_only: bool) -> None:
        """Read the children of ``root`` (and their tails) in document order. Iterative: a stack of
        (child iterator, element, loose text counts), so no nesting depth costs Python stack."""
        if not blocks_only:
            self._text(root.text)
        stack: list[tuple[object, Element | None, bool]] = [(iter(root), None, blocks_only)]
        while stack:
            children, _, only_blocks = stack[-1]
            entered = False
            for child in children:  # type: ignore[attr-defined]
                if self._visit(child, only_blocks, stack):
                    entered = True
                    break
                if not only_blocks:
                    self._text(child.tail)
            if entered:
                continue
            _, node, only_blocks = stack.pop()
            if node is not None:
                if node.tag in BLOCK_TAGS or node.tag in TEXT_BLOCKS:
                    self._flush()
                if stack and not stack[-1][2]:
                    self._text(node.tail)

    def _visit(self, el: Element, blocks_only: bool, stack: list) -> bool:
        """Handle one element; True when it was entered (pushed on ``stack``)."""
        if el in self.skip:
            return False
        role = body_role(el)
        tag = el.tag
        if role == "skip":
            return False
        if role == "image" and (el.get("data-media-id") or next(el.iter("img"), None) is not None):
            self._flush()
            self._image_block(el)
            return False
        if role == "spotlight":
            self._flush()
            a = next((a for a in el.iter("a") if a.get("href")), None)
            if a is not None:
                self._spotlight(a)
            return False
        if role == "img":
            image = images.image_from_img(el, self.url)
            if image is not None:
                self._flush()
                self._add_image(image)
            return False
        if tag == "br":
            if not blocks_only:
                self._flush()
            return False
        if tag == "a" and _SPOTLIGHT_LABEL_RE.match(text_of(el)):
            self._flush()
            self._spotlight(el)
            return False
        if tag in TEXT_BLOCKS:
            self._flush()
            if not _reads_as_lines(el):
                self._paragraph_block(el)
                return False
            self._text(el.text)  # tag soup, or <br><br>-separated paragraphs inside one block
            stack.append((iter(el), el, False))
            return True
        if tag in BLOCK_TAGS:
            self._flush()
            if not blocks_only:
                self._text(el.text)
            stack.append((iter(el), el, blocks_only))
            return True
        if blocks_only:  # an inline wrapper in layout: only blocks it wraps count
            if _has_block_descendant(el):
                stack.append((iter(el), el, True))
                return True
            return False
        if tag in ("strong", "b") and self._lead is None and not self._has_text():
            self._lead = text_of(el)
        self._text(el.text)
        stack.append((iter(el), el, False))
        return True

    def _paragraph_block(self, el: Element) -> None:
        """A text block without block descendants: one paragraph (a ``<br>`` in it is a space);
        an image inline in it is an image of the story."""
        for img in el.iter("img"):
            image = images.image_from_img(img, self.url)
            if image is not None:
                self._add_image(image)
        text = text_of(el)
        if not text:
            return
        lead = None
        if not (el.text or "").strip() and len(el) and el[0].tag in ("strong", "b"):
            lead = text_of(el[0])
        if text.lower().startswith("spotlight"):
            a = next(el.iter("a"), None)
            if a is not None and _SPOTLIGHT_LABEL_RE.match(text_of(a)):
                self._spotlight(a)
                return
        self._add(text, lead, el)

    def _image_block(self, el: Element) -> None:
        soup = images.is_soup(el)
        image = images.parse_image(el, self.url, soup=soup)
        if image is not None:
            self._add_image(image)
        if soup:
            self._rescue(el)

    def _rescue(self, el: Element) -> None:
        """Body content that unclosed tags nested inside an image block: its text blocks, images
        and spotlights, in document order (a browser still shows them as the story). The block's
        own fields are skipped; its loose text is the block's, not the story's."""
        self._depth += 1
        if self._depth > _MAX_SOUP_DEPTH:
            raise TooDeep(f"tag soup nests image blocks more than {_MAX_SOUP_DEPTH} levels deep")
        stack: list[object] = [iter(el)]
        while stack:
            for child in stack[-1]:  # type: ignore[attr-defined]
                role = body_role(child)
                tag = child.tag
                if role == "image":
                    self._image_block(child)
                elif role == "spotlight":
                    a = next((a for a in child.iter("a") if a.get("href")), None)
                    if a is not None:
                        self._spotlight(a)
                elif tag in TEXT_BLOCKS and role is None:
                    if _has_block_descendant(child):
                        stack.append(iter(child))
                        break
                    text = text_of(child)
                    if text and not images.is_label_line(text):
                        self._add(text, None, child)
                elif role is None or (role == "skip" and isinstance(tag, str) and tag not in SKIP_TAGS
                                      and tag not in ("img", "a") and _has_block_descendant(child)
                                      and not any(c in (child.get("class") or "") for c in ("tags", "related"))):
                    stack.append(iter(child))
                    break
            else:
                stack.pop()
        self._depth -= 1

    # -- text runs ----------------------------------------------------------------------------

    def _text(self, text: str | None) -> None:
        if text:
            self._buf.append(text)

    def _has_text(self) -> bool:
        return any(part.strip() for part in self._buf)

    def _flush(self) -> None:
        """End the current line of loose text: it is a paragraph unless it is empty or a label."""
        text = norm("".join(self._buf))
        lead = self._lead
        self._buf.clear()
        self._lead = None
        if text:
            self._add(text, lead, None)

    def _add(self, text: str, lead: str | None, block: Element | None) -> None:
        if images.is_label_line(text):
            if self._after_image and self.images:  # a label printed after its image block
                href = next((a.get("href") for a in block.iter("a") if a.get("href")), None) if block is not None \
                    else None
                images.fill_from_label(self.images[-1], text, abs_url(self.url, href))
            return
        self._after_image = False
        if self._opens_with_dateline(text, lead):
            self.dateline, text = clean_dateline(lead), norm(text[len(lead):])  # type: ignore[arg-type]
        if _BOILERPLATE_TEXT_RE.match(text) or (self.blocks_only and text == self.title):
            return
        if not any(c.isalnum() for c in text):
            return  # stray punctuation left by broken markup ("&", "|")
        self.paragraphs.append(text)

    def _opens_with_dateline(self, text: str, lead: str | None) -> bool:
        """The story's first line starts with a bold "CITY (AFNS) --": that is its dateline."""
        return (not self.paragraphs and self.dateline is None and bool(lead) and text.startswith(lead)
                and len(text) > len(lead) and _DATELINE_END_RE.search(lead) is not None)  # type: ignore[arg-type]

    def _add_image(self, image: Image) -> None:
        self.images.append(image)
        self._after_image = True

    def _spotlight(self, a: Element) -> None:
        href = abs_url(self.url, a.get("href"))
        title = _SPOTLIGHT_LABEL_RE.sub("", text_of(a))
        if href and title and all(s["url"] != href for s in self.spotlights):
            self.spotlights.append({"title": title, "url": href})


def _has_block_descendant(el: Element) -> bool:
    """A block element anywhere below ``el``: its text is not one paragraph."""
    return len(el) > 0 and any(node.tag in _BLOCK_DESCENDANTS for node in el.iterdescendants())


def _reads_as_lines(el: Element) -> bool:
    """A text block read line by line: it swallowed blocks (tag soup), or it separates paragraphs
    with ``<br><br>`` (a single ``<br>`` inside a paragraph is a line break of that paragraph)."""
    if not len(el):
        return False
    if _has_block_descendant(el):
        return True
    for br in el.iter("br"):
        following = br.getnext()
        if following is not None and following.tag == "br" and not (br.tail or "").strip():
            return True
    return False
