"""The one diff (monitor/diff.py) that events, alert mails and ``defwatch diff`` share."""

from __future__ import annotations

from monitor import compose
from monitor.diff import (
    SIMILARITY,
    Para,
    field_diffs,
    hunk_from_op,
    pair_paragraphs,
    paragraph_hunks,
    similar,
    word_segments,
)


def test_a_lone_space_between_two_changes_joins_them_into_one_replacement():
    assert word_segments("the old cat sat", "the new dog sat") == [
        ("", "the "), ("del", "old cat"), ("ins", "new dog"), ("", " sat"),
    ]


def test_any_white_space_run_between_two_changes_is_folded_but_a_kept_word_or_comma_is_not():
    assert word_segments("a\tb c", "x\ty c") == [("del", "a\tb"), ("ins", "x\ty"), ("", " c")]
    assert word_segments("red, blue", "green, pink") == [
        ("del", "red"), ("ins", "green"), ("", ", "), ("del", "blue"), ("ins", "pink"),
    ]


def test_segments_rebuild_both_versions_exactly():
    old, new = "Troops arrived on Monday, officials said.", "Troops left on Tuesday, officials said today."
    segments = word_segments(old, new)
    assert "".join(text for kind, text in segments if kind != "ins") == old
    assert "".join(text for kind, text in segments if kind != "del") == new


def test_similarity_decides_between_word_marks_and_whole_paragraphs():
    assert SIMILARITY == 0.4
    assert similar("one two three four five", "one two three four six")
    assert not similar("Briefing postponed.", "Contract awarded to Boeing for tankers.")
    assert pair_paragraphs(["Briefing postponed."], ["Contract awarded to Boeing for tankers."]) == [
        Para("deleted", [("del", "Briefing postponed.")]),
        Para("inserted", [("ins", "Contract awarded to Boeing for tankers.")]),
    ]


def test_paragraph_hunks_number_paragraphs_from_one():
    changed, added = paragraph_hunks(["a", "b", "c"], ["a", "B", "c", "d", "e"])
    assert (changed.old_start, changed.old_count, changed.new_start, changed.new_count) == (2, 1, 2, 1)
    assert (added.old_start, added.old_count, added.new_start, added.new_count) == (4, 0, 4, 2)
    assert (changed.label, added.label) == ("paragraph 2", "paragraph 4-5")
    [gone] = paragraph_hunks(["a", "b", "c"], ["a"])
    assert gone.label == "old paragraph 2-3 deleted"


def test_an_event_diff_and_its_mail_and_terminal_views_agree():
    old = {"paragraphs": ["Kept.", "The old cat sat."], "title": "Old"}
    new = {"paragraphs": ["Kept.", "The new dog sat."], "title": "New"}
    diff = field_diffs(old, new, ["title", "body"])
    assert diff == {
        "title": [{"op": "replace", "old": ["Old"], "new": ["New"]}],
        "body": [{"op": "replace", "old": ["The old cat sat."], "new": ["The new dog sat."]}],
    }
    [op] = diff["body"]
    mail = compose._html_paragraphs(op["old"], op["new"])
    terminal = hunk_from_op(op).paras
    assert mail == [{"cls": p.kind, "segments": p.segments} for p in terminal]
    assert terminal == [Para("changed", [("", "The "), ("del", "old cat"), ("ins", "new dog"), ("", " sat.")])]
