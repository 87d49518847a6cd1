"""A small CSS-subset selector engine for the fallback paths (``tag.class[attr*=value]`` compounds
joined by descendant spaces), compiled once at import.

The hot path (a story in the site's own template) walks known structure instead; selectors are
for markup the role tables do not recognise. libxml2 evaluates class predicates slowly on every
node, so class-only selectors are answered from a per-scope class index, tag-qualified ones from a
per-tag list, and any selector naming a class the raw page never mentions costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from crawler.parsers.dom import ELEMENTS, Element, Page
from crawler.parsers.extract import text_of

_COMPOUND_RE = re.compile(r"^(?P<tag>[A-Za-z][\w-]*|\*)?(?P<rest>(?:\.[\w-]+|\[[^\]]+\])*)$")
_ATTR_RE = re.compile(r"^\[\s*([\w:-]+)\s*(?:([*^$]?=)\s*[\"']?(.*?)[\"']?\s*)?\]$")
_PART_RE = re.compile(r"\.[\w-]+|\[[^\]]+\]")


class _Compound:
    __slots__ = ("tag", "classes", "attrs")

    def __init__(self, text: str) -> None:
        m = _COMPOUND_RE.match(text)
        if not m:
            raise ValueError(f"unsupported selector part {text!r}")
        tag = m.group("tag")
        self.tag = None if tag in (None, "*") else tag.lower()
        self.classes: tuple[str, ...] = ()
        self.attrs: tuple[tuple[str, str | None, str], ...] = ()
        for part in _PART_RE.findall(m.group("rest")):
            if part.startswith("."):
                self.classes += (part[1:],)
            else:
                a = _ATTR_RE.match(part)
                if not a:
                    raise ValueError(f"unsupported attribute selector {part!r}")
                self.attrs += ((a.group(1).lower(), a.group(2), a.group(3) or ""),)

    def matches(self, el: Element, classes: list[str] | None = None) -> bool:
        """True when ``el`` matches; ``classes`` are its class tokens when already known."""
        if self.tag is not None and el.tag != self.tag:
            return False
        if self.classes:
            tokens = classes if classes is not None else (el.get("class") or "").split()
            for c in self.classes:
                if c not in tokens:
                    return False
        for name, op, expected in self.attrs:
            value = el.get(name)
            if value is None or not _attr_ok(value, op, expected):
                return False
        return True


def _attr_ok(value: str, op: str | None, expected: str) -> bool:
    if op is None:
        return True
    if op == "=":
        return value == expected
    if op == "*=":
        return expected in value
    if op == "^=":
        return value.startswith(expected)
    return value.endswith(expected)


class Sel:
    """A compiled selector: compounds (``tag.class[attr op value]``) joined by descendant spaces.

    Matches are in document order and include the scope element itself (descendant-or-self),
    so a block's own ``data-media-id`` is found with the block as scope. Tag-qualified selectors
    ("div.body") scan one cached per-tag list; class-only ones (".body") use a class index built
    on demand, and only when the class name occurs in the page at all.
    """

    def __init__(self, selector: str) -> None:
        self.text = selector
        self.parts = [_Compound(p) for p in selector.split()]
        self.required = tuple(
            {c.encode() for part in self.parts for c in part.classes}
            | {name.encode() for part in self.parts for name, _, _ in part.attrs}
        )

    def __repr__(self) -> str:
        return f"Sel({self.text!r})"

    def all(self, page: Page, scope: Element | None = None) -> list[Element]:
        if not page.mentions(self.required):
            return []
        last = self.parts[-1]
        if last.tag and (len(self.parts) == 1 or last.classes or last.attrs):
            tagged = page.tagged(scope, last.tag)
            if last.attrs or len(last.classes) > 1:
                found = [el for el, classes in tagged if last.matches(el, classes)]
            elif last.classes:
                token = last.classes[0]
                found = [el for el, classes in tagged if token in classes]
            else:
                found = [el for el, _ in tagged]
        elif last.classes:
            found = [el for el in page.class_index(scope).get(last.classes[0], ()) if last.matches(el)]
        elif len(self.parts) > 1:
            return self._under_ancestors(page, scope, last)
        else:
            base = page.root if scope is None else scope
            found = [el for el in base.iter(tag=ELEMENTS) if last.matches(el)]
        return [el for el in found if self._ancestors_match(el)] if len(self.parts) > 1 else found

    def first(self, page: Page, scope: Element | None = None) -> Element | None:
        found = self.all(page, scope)
        return found[0] if found else None

    def _under_ancestors(self, page: Page, scope: Element | None, last: _Compound) -> list[Element]:
        """Unqualified last part (".tags a"): search inside the elements the leading parts match."""
        anchors = Sel.__new__(Sel)
        anchors.text, anchors.parts, anchors.required = self.text, self.parts[:-1], ()
        out: list[Element] = []
        seen: set[Element] = set()
        for anchor in anchors.all(page, scope):
            for el in anchor.iter(last.tag or ELEMENTS):
                if el is not anchor and el not in seen and last.matches(el):
                    seen.add(el)
                    out.append(el)
        return out

    def _ancestors_match(self, el: Element) -> bool:
        """The ancestors of ``el`` match the leading parts, innermost first."""
        need = len(self.parts) - 2
        node = el.getparent()
        while need >= 0 and node is not None:
            if self.parts[need].matches(node):
                need -= 1
            node = node.getparent()
        return need < 0


def sels(*selectors: str) -> tuple[Sel, ...]:
    """A fallback chain: compiled once at import, tried in order."""
    return tuple(Sel(s) for s in selectors)


def first_match(page: Page, scope: Element | None, chain: Iterable[Sel]) -> Element | None:
    """The first element of the first selector in ``chain`` that finds any."""
    for sel in chain:
        found = sel.first(page, scope)
        if found is not None:
            return found
    return None


def all_of_first(page: Page, scope: Element | None, chain: Iterable[Sel]) -> list[Element]:
    """All matches of the first selector in ``chain`` that matches anything."""
    for sel in chain:
        found = sel.all(page, scope)
        if found:
            return found
    return []


def first_text(page: Page, scope: Element | None, chain: Iterable[Sel]) -> str | None:
    """Text of the first non-empty match, trying selectors in order."""
    for sel in chain:
        for el in sel.all(page, scope):
            value = text_of(el)
            if value:
                return value
    return None




