"""One counting function for a run's stats, shared by the pipeline and the distributed writer.

The two used to carry copies of the same counting code; a counter added to one and not the other
would make a distributed run's summary read differently from a single-process one.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from core.fetch import FetchInfo, SaveResult
from crawler.archiver import Stored
from crawler.distributed.results import encode
from crawler.distributed.writer import ResultDrain
from crawler.items import PageResult
from crawler.outcomes import count_result
from crawler.parsers import ParseError
from crawler.pipelines import ArchivePipeline

STORY = "http://127.0.0.1:8000/News/News-Stories/Article/Article/1/"


def _fetch(outcome: str, page_type: str | None) -> FetchInfo:
    return FetchInfo(url=STORY, outcome=outcome, page_type=page_type, subject_id=1, fetched_at="2026-01-01T00:00:00Z")


CASES: list[tuple[PageResult, SaveResult]] = [
    (PageResult(_fetch("ok", "story"), b"<html></html>"), SaveResult(1, 1, new_version=True, new_subject=True)),
    (PageResult(_fetch("ok", "story"), b"<html></html>"), SaveResult(2, 1)),
    (PageResult(_fetch("ok", "story"), b"x", ParseError(url=STORY, reason="no title")), SaveResult(3)),
    (PageResult(_fetch("error", None)), SaveResult(4)),
    (PageResult(_fetch("not_modified", "photo")), SaveResult(5, 2)),
]
EXPECTED = {
    "fetches": 5, "outcome/ok": 3, "outcome/error": 1, "outcome/not_modified": 1,
    "pages/story": 3, "pages/other": 1, "pages/photo": 1, "parse_errors/story": 1,
    "new_versions/story": 1, "new/story": 1,
}


def _record_type(item: PageResult) -> str | None:
    return item.record.type if item.record is not None else None


def test_count_result_counts_outcomes_pages_versions_and_parse_errors() -> None:
    counts: Counter[str] = Counter()
    for item, result in CASES:
        count_result(counts, item.fetch, _record_type(item), result)
    assert dict(counts) == EXPECTED


def test_pipeline_and_writer_both_count_through_count_result(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def spy(counts: Counter[str], fetch: FetchInfo, record_type: str | None, result: SaveResult) -> None:
        calls.append(fetch.outcome)
        count_result(counts, fetch, record_type, result)

    monkeypatch.setattr("crawler.pipelines.count_result", spy)
    monkeypatch.setattr("crawler.distributed.writer.count_result", spy)
    pipeline = ArchivePipeline.__new__(ArchivePipeline)  # only its counters are used here
    pipeline.counts, pipeline.progress = Counter(), None
    for item, result in CASES:  # the archive writer process answers with the record's type
        stored = Stored(item.fetch, result, _record_type(item))
        pipeline._count(PageResult(item.fetch, item.body), stored)
    drain = ResultDrain(None, None, _FakeArchive([r for _, r in CASES]), run_id=7,  # type: ignore[arg-type]
                        renew=lambda: None)
    for item, _ in CASES:
        drain._store(encode(item, 7, "w1"))
    assert len(calls) == 2 * len(CASES)
    assert dict(pipeline.counts) == dict(drain.counts) == EXPECTED


class _FakeArchive:
    """Stands in for the archive: hands back the prepared save results in order."""

    def __init__(self, results: list[SaveResult]) -> None:
        self.results = list(results)

    def begin_batch(self) -> None:
        pass

    def save_response(self, *_: Any) -> SaveResult:
        return self.results.pop(0)
