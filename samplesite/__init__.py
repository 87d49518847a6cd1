"""A local stand-in for www.war.gov: story, photo and listing pages, RSS feeds and robots.txt
served from a data file, able to change, break and misbehave on command.

``render_page(path)`` answers one GET in-process (no socket) from the default data file, for
parsers and their tests; ``SampleSite`` serves the same pages over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import threading

from samplesite.paths import DEFAULT_SITE

_default_site = None
_default_lock = threading.Lock()


def render_page(path: str, base: str = DEFAULT_SITE) -> tuple[int, dict[str, str], bytes]:
    """Render ``path`` (with query) from the default data file exactly as a GET would be answered.

    Uses a private, never-edited site, so other code that changes a SampleSite cannot affect it.
    """
    global _default_site
    from samplesite.site import Site

    with _default_lock:
        if _default_site is None:
            _default_site = Site()
        resp = _default_site.respond("GET", path, {}, base=base)
        _default_site.clear_requests()
    return resp.status, resp.headers, resp.body


def __getattr__(name: str):
    """Import the server lazily: parsers that only need ``render_page`` skip its imports."""
    if name in ("SampleSite", "serve_forever"):
        from samplesite import server

        return getattr(server, name)
    if name == "Site":
        from samplesite.site import Site

        return Site
    raise AttributeError(name)


__all__ = ["render_page", "SampleSite", "Site", "serve_forever"]
