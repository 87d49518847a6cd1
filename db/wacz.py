"""A WARC export packaged as WACZ (``defwatch export --format wacz``), with py-wacz.

ReplayWeb.page and pywb open a WACZ directly: a ZIP holding the WARC, its CDXJ index and a pages
list (what a reader is offered to open). py-wacz writes the index and the datapackage; the pages
are the story and photo pages of the export, titled as the archive knows them, so the list is the
site's pages rather than every feed, listing and robots.txt a heuristic would pick.

py-wacz is an optional extra (``pip install -e '.[wacz]'``): it brings frictionless and its own
dependency tree, which a crawler that never packages WACZ does not need.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import sqlite_utils

from db.warc_export import selected_fetches


class WaczUnavailable(RuntimeError):
    """py-wacz is not installed."""


def write_pages(db: sqlite_utils.Database, path: Path, since: str | None, run_id: int | None) -> int:
    """The pages list (``json-pages-1.0``): each story and photo page of the export once, with its title."""
    clause, params = selected_fetches(db, since, run_id)
    rows = db.execute(
        f"""SELECT f.url, MAX(COALESCE(s.title, i.title, i.caption)) FROM (
                SELECT COALESCE(final_url, url) AS url, page_type, subject_id FROM fetches
                WHERE {clause} AND status = 200 AND page_type IN ('story', 'photo')) f
            LEFT JOIN stories s ON f.page_type = 'story' AND s.id = f.subject_id
            LEFT JOIN images i ON f.page_type = 'photo' AND i.media_id = f.subject_id
            GROUP BY f.url ORDER BY f.url""",
        params,
    )
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        out.write(json.dumps({"format": "json-pages-1.0", "id": "pages", "title": "Story and photo pages"}) + "\n")
        for url, title in rows:
            out.write(json.dumps({"url": url, "title": title or url}, ensure_ascii=False) + "\n")
            count += 1
    return count


def package_wacz(warc: Path, pages: Path, output: Path, *, title: str, description: str) -> None:
    """Write ``output`` as a WACZ of ``warc`` (its file name is kept inside) with the pages list."""
    try:
        from wacz.main import main as wacz_main
    except ImportError as exc:
        raise WaczUnavailable("--format wacz needs py-wacz: pip install -e '.[wacz]'") from exc
    chatter = io.StringIO()  # py-wacz prints its progress; the command prints its own one line
    with contextlib.redirect_stdout(chatter):
        status = wacz_main(["create", "-o", str(output), str(warc), "-p", str(pages), "--title", title,
                            "--desc", description])
    if status:
        raise OSError(f"py-wacz could not package {warc.name}: {chatter.getvalue().strip().splitlines()[-1:]}")
