"""The body of a story page: paragraphs and sub-headings, inline images and spotlight links, in
one walk of the body element's children.

The role tables below are the body's "selectors". The common case (a plain ``<p>``) is handled
first and in line: this loop runs for every paragraph of every page. Tag soup (unclosed tags that
nest the rest of the body inside a paragraph or an image block) is read line by line, as a
browser shows it, so a markup-only breakage is not reported as an edit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from core.records import Image
from crawler.parsers import images
from crawler.parsers.dom import Element, Page, class_role
from crawler.parsers.extract import BLOCK_TAGS, SKIP_TAGS, abs_url, lines_of, text_of
from crawler.parsers.text import clean_dateline, norm

# Blocks inside the body that are not paragraphs: images and spotlight links are read as such,
# everything else listed here is site furniture.
BODY_BLOCK_BY_CLASS = {
    "media-inline": "image", "spotlight-inline": "spotlight", "spotlight": "spotlight",
    "social": "skip", "social-top": "skip", "social-bottom": "skip", "share": "skip", "sr-only": "skip",
    "visually-hidden": "skip", "print": "skip", "tags": "skip", "related": "skip", "gallery": "skip",
    "media-inline-popup": "skip", "breadcrumb": "skip", "disclaimer": "skip", "header": "skip",
    "footer": "skip", "caption": "skip", "credit": "skip", "virin": "skip", "mtitle": "skip", "minfo": "skip",
    "image-wrapper": "skip", "category": "skip", "byline": "skip", "date": "skip", "info": "skip",
    "dateline": "skip", "maintitle": "skip", "subtitle": "skip",
}
BODY_BLOCK_BY_TAG = {
    "figure": "image", "header": "skip", "footer": "skip", "nav": "skip", "aside": "skip",
    "figcaption": "skip", "h1": "skip", "script": "skip", "style": "skip", "noscript": "skip", "form": "skip",
    "button": "skip", "iframe": "skip", "template": "skip", "img": "skip", "video": "skip", "audio": "skip",
}
# Furniture that image-block rescue never enters (everything else in a soup block may hide paragraphs).
_FURNITURE = {c: "skip" for c in ("tags", "related", "social", "social-top", "social-bottom", "share", "sr-only",
                                    "visually-hidden", "gallery", "footer", "breadcrumb")}
# Blocks whose text is one paragraph (or sub-heading) of the story.
TEXT_BLOCKS = frozenset({"p", "h2", "h3", "h4", "h5", "h6", "li", "pre", "dd", "dt"})
# Blocks that may hold text blocks; read as one paragraph when they hold none.
CONTAINERS = frozenset({"div", "section", "article", "main", "ul", "ol", "dl", "blockquote", "center", "span", "font",
                        "table"})
_INLINE_WRAPPERS = frozenset({"span", "font"})
_NESTED_BLOCKS = TEXT_BLOCKS | CONTAINERS - _INLINE_WRAPPERS - {"table"}

_MAX_SOUP_DEPTH = 100


class TooDeep(Exception):
    """Markup too deeply nested to be read (see BodyReader._enter)."""


_SPOTLIGHT_LABEL_RE = re.compile(r"^\s*Spotlight\s*:\s*", re.I)
_DATELINE_END_RE = re.compile(r"(?:--|—|–)\s*$")
_SHORT = 160
# Paragraph texts that are site furniture even when they sit inside the body region.
_BOILERPLATE_TEXT_RE = re.compile(
    r"^(?:Choose which (?:Defense|War)\.gov products you want delivered to your inbox\.?|"
    r"Subscribe to .{0,40}(?:news|updates)|Related Stories|Tags?:?|Share|Print|Email)$",
    re.I,
)


class BodyReader:
    """Paragraphs, inline images and spotlight links of the body, in one walk.

    Without a body element (fallback), only real text blocks (p, h2-h6, li...) of the article
    count, layout divs there being page furniture.
    """

    def __init__(self, page: Page, body: Element | None, article: Element | None, title: str,
                 regions: dict[str, Element] | None = None) -> None:
        self.url = page.url
        self.lifted = page.lifted
        self.fallback = body is None
        # Reading the whole article (no body element): never read its tags or related regions.
        self.skip = {el for key, el in (regions or {}).items() if key in ("tags", "related")} if body is None else set()
        self.title = title
        self.paragraphs: list[str] = []
        self.images: list[Image] = []
        self.spotlights: list[dict[str, str]] = []
        self.dateline: str | None = None
        self._depth = 0
        root = body if body is not None else article
        if root is None:
            return
        self._read(root)
        if not self.paragraphs and not self.fallback:
            if self.lifted is not None:
                self.lifted.read_as_text = True  # these lines would include the image blocks' text
            self.paragraphs = [line for line in lines_of(root) if not _BOILERPLATE_TEXT_RE.match(line)]

    def _read(self, root: Element) -> None:
        """Walk the children of ``root`` in document order: text blocks become paragraphs, images
        and spotlights are collected, furniture is skipped, containers are entered.

        One flat loop with the common case (a plain ``<p>``) first: this is the hot path. Entered
        containers go on an explicit stack of child iterators, so markup nested thousands of levels
        deep costs no Python stack.
        """
        paragraph = self.paragraphs.append
        stack = [iter(root)]
        while stack:
            for child in stack[-1]:  # resumes where this level was left when a container was entered
                tag = child.tag
                classes = child.get("class")
                if classes is None and tag == "p" and not len(child):
                    text = norm(child.text)
                    if len(text) >= _SHORT:
                        paragraph(text)  # a plain long paragraph needs no furniture checks
                    elif text:
                        self._add(child, text, False)
                    continue
                role = _body_role(child, tag, classes)
                if role is not None:
                    self._special(role, child)
                elif self.skip and child in self.skip:
                    continue
                elif tag in TEXT_BLOCKS or tag in CONTAINERS:
                    if len(child) and _has_block_child(child):
                        stack.append(iter(child))
                        break
                    if tag in TEXT_BLOCKS and len(child) and _has_block_descendant(child):
                        self._read_lines(child)  # tag soup: a paragraph that swallowed later blocks
                    elif tag in TEXT_BLOCKS or not self.fallback or tag == "blockquote":
                        text = text_of(child)
                        if text:
                            self._add(child, text, len(child) > 0)
                elif tag == "a" and _SPOTLIGHT_LABEL_RE.match(text_of(child)):
                    self._spotlight(child)
            else:
                stack.pop()

    def _special(self, role: str, el: Element) -> None:
        if role == "image":
            image, soup = images.parse_inline(el, self.url, self.lifted)
            if image is not None:
                self.images.append(image)
            if soup:
                self._rescue(el)
        elif role == "spotlight":
            for a in el.iter("a"):
                if a.get("href"):
                    self._spotlight(a)
                    break

    def _rescue(self, el: Element) -> None:
        """Body content that unclosed tags nested inside an image block: its paragraphs and the
        image and spotlight blocks within it, in document order (a browser still shows them as
        the story). Image fields are entered (soup hides paragraphs there) but not read as text.

        Iterative (a stack of child iterators); an image block that is itself soup is entered on
        the same stack, so nested soup never recurses.
        """
        self._enter()
        stack = [iter(el)]
        while stack:
            for child in stack[-1]:
                tag = child.tag
                role = _body_role(child, tag, child.get("class"))
                if role == "image":
                    image, soup = images.parse_inline(child, self.url, self.lifted)
                    if image is not None:
                        self.images.append(image)
                    if soup:
                        stack.append(iter(child))
                        break
                elif role == "spotlight":
                    self._special(role, child)
                elif tag in TEXT_BLOCKS and role is None:
                    if len(child) and _has_block_descendant(child):
                        self._read_lines(child)
                    else:
                        text = text_of(child)
                        if text:
                            self._add(child, text, len(child) > 0)
                elif _role(child, _FURNITURE) is None and tag not in SKIP_TAGS:
                    stack.append(iter(child))
                    break
            else:
                stack.pop()
        self._depth -= 1

    def _read_lines(self, el: Element) -> None:
        """Read a soup subtree as lines: block elements and <br> end a paragraph wherever they
        are nested (what a browser shows), images, spotlights and furniture are handled by role.

        Iterative: a stack of (child iterator, element, ends a line) so depth costs no Python stack.
        """
        self._enter()
        buf: list[str] = []

        def flush() -> None:
            text = norm("".join(buf))
            buf.clear()
            if text:
                self._add(el, text, False)

        if el.text:
            buf.append(el.text)
        stack: list[tuple[Iterator[Element], Element | None, bool]] = [(iter(el), None, False)]
        while stack:
            children, node, block = stack[-1]
            for child in children:
                tag = child.tag
                if isinstance(tag, str) and tag not in SKIP_TAGS:
                    role = _body_role(child, tag, child.get("class"))
                    if role is not None:
                        flush()
                        self._special(role, child)
                    else:
                        ends_line = tag == "br" or tag in BLOCK_TAGS
                        if ends_line:
                            flush()
                        if child.text:
                            buf.append(child.text)
                        stack.append((iter(child), child, ends_line))
                        break  # the child's tail is read when its level is done
                if child.tail:
                    buf.append(child.tail)
            else:
                stack.pop()
                if node is not None:
                    if block:
                        flush()
                    if node.tail:
                        buf.append(node.tail)
        flush()
        self._depth -= 1

    def _enter(self) -> None:
        """Count one more soup level being read. Soup inside an image block inside soup recurses
        through _special; past _MAX_SOUP_DEPTH levels the page is given up rather than Python's stack."""
        self._depth += 1
        if self._depth > _MAX_SOUP_DEPTH:
            raise TooDeep(f"tag soup nests image blocks more than {_MAX_SOUP_DEPTH} levels deep")

    def _spotlight(self, a: Element) -> None:
        href = abs_url(self.url, a.get("href"))
        title = _SPOTLIGHT_LABEL_RE.sub("", text_of(a))
        if href and title and all(s["url"] != href for s in self.spotlights):
            self.spotlights.append({"title": title, "url": href})

    def _add(self, block: Element, text: str, has_children: bool) -> None:
        if has_children and not self.paragraphs and self.dateline is None:
            self.dateline, text = _split_dateline(block, text)
        if len(text) < _SHORT:  # furniture and spotlight lines are short; long text is a paragraph
            spot = _spotlight_anchor(block, text) if has_children else None
            if spot is not None:
                self._spotlight(spot)
                return
            if _BOILERPLATE_TEXT_RE.match(text) or (self.fallback and text == self.title):
                return
            if not any(c.isalnum() for c in text):
                return  # stray punctuation left by broken markup ("&", "|")
        self.paragraphs.append(text)


def _spotlight_anchor(block: Element, text: str) -> Element | None:
    """A paragraph that is only a "Spotlight: ..." link (markup without a spotlight class)."""
    if not text.lower().startswith("spotlight"):
        return None
    a = next(block.iter("a"), None)
    return a if a is not None and _SPOTLIGHT_LABEL_RE.match(text_of(a)) else None


def _split_dateline(block: Element, text: str) -> tuple[str | None, str]:
    """(dateline, rest) when the block starts with a bold "CITY (AFNS) --"; else (None, text)."""
    if (block.text or "").strip() or len(block) == 0:
        return None, text
    lead = block[0]
    if lead.tag not in ("strong", "b"):
        return None, text
    head = text_of(lead)
    if _DATELINE_END_RE.search(head) and text.startswith(head) and len(text) > len(head):
        return clean_dateline(head), norm(text[len(head):])
    return None, text


def _body_role(el: Element, tag: str, classes: str | None) -> str | None:
    """image / spotlight / skip for special blocks of the body, None for text and containers."""
    if classes:
        try:
            role = _CLASS_ROLES[classes]
        except KeyError:
            role = _class_role(classes)
        if role is not None:
            return role
    role = BODY_BLOCK_BY_TAG.get(tag)
    if role is None and tag == "div" and el.get("data-media-id"):
        role = "image"  # an image block without the media-inline class
    return role


# class attribute -> role (or None), filled as pages are read: a site uses a few dozen class strings
# ("media-inline media-inline-right media-inline-medium"), and splitting them was a cost per block.
_CLASS_ROLES: dict[str, str | None] = {}
_CLASS_ROLES_MAX = 4096


def _class_role(classes: str) -> str | None:
    """The body role of a class attribute: the whole string, else its first listed token."""
    role = BODY_BLOCK_BY_CLASS.get(classes)
    if role is None and " " in classes:
        role = next((BODY_BLOCK_BY_CLASS[t] for t in classes.split() if t in BODY_BLOCK_BY_CLASS), None)
    if len(_CLASS_ROLES) >= _CLASS_ROLES_MAX:
        _CLASS_ROLES.clear()  # hostile pages with endless distinct classes: bounded, never stale
    _CLASS_ROLES[classes] = role
    return role


def _has_block_descendant(el: Element) -> bool:
    """A block element anywhere below ``el``. A plain loop for the usual few inline children
    (lxml's multi-tag iterator costs more to set up); its C-level scan for a large subtree."""
    for seen, node in enumerate(el.iterdescendants()):
        if node.tag in _NESTED_BLOCKS:
            return True
        if seen == 32:
            return next(el.iterdescendants(*_NESTED_BLOCKS), None) is not None
    return False


def _has_block_child(el: Element) -> bool:
    """A block among the children, or an inline wrapper (span, font) that holds blocks: tag soup
    like ``<span><span><p>..</p><p>..</p>`` shows as separate paragraphs in a browser."""
    for child in el:
        tag = child.tag
        if tag in _NESTED_BLOCKS or (tag in _INLINE_WRAPPERS and len(child) and _has_block_descendant(child)):
            return True
    return False


def _role(el: Element, table: Mapping[str, str]) -> str | None:
    """The role of the first class token of ``el`` listed in ``table``."""
    return class_role(el.get("class"), table)
