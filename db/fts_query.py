"""Plain search words -> an FTS5 query that searches for exactly those words.

FTS5's query language reads ``-``, ``.``, ``'``, ``:`` and bare ``AND``/``OR``/``NOT`` as syntax, so
what people type first (``Indo-Pacific``, ``counter-drone``, ``Navy's``, ``U.S.-Japan``) failed with
"no such column" or a syntax error. Here each word the user typed becomes one FTS5 phrase, which the
tokenizer splits exactly as it split the archived text (``"Indo-Pacific"`` matches "indo" directly
followed by "pacific"), and every word must match. Text in double quotes stays one phrase, and a
trailing ``*`` asks for a prefix. FTS5's own syntax is still there behind ``search --fts``.
"""

from __future__ import annotations

import re

# A double-quoted phrase (closed or running to the end of the input), or a run of non-space text.
_TERM = re.compile(r'"([^"]*)"?(\*?)|(\S+)')
_WORDY = re.compile(r"[^\W_]")  # a letter or digit: a term without one gives FTS5 no token at all
# Words that FTS5 would read as operators or column filters if typed bare; for the hint only.
_FTS_SYNTAX = re.compile(r"(?:^|\s)(?:AND|OR|NOT|NEAR)(?:\s|\(|$)|\b\w+\s*:\s*\S|\bNEAR\(")


class EmptyQuery(ValueError):
    """The input has no word to search for (empty, blank or only punctuation)."""


def plain_query(text: str) -> str:
    """The FTS5 query that finds stories containing every word of ``text``, as typed.

    >>> plain_query("Indo-Pacific counter-dr*")
    '"Indo-Pacific" AND "counter-dr"*'
    >>> plain_query('"space force" Navy\\'s')
    '"space force" AND "Navy\\'s"'
    """
    terms = []
    for match in _TERM.finditer(text):
        quoted, quoted_star, bare = match.groups()
        term, prefix = (quoted, quoted_star == "*") if bare is None else _split_prefix(bare)
        if _WORDY.search(term):
            terms.append(_phrase(term) + ("*" if prefix else ""))
    if not terms:
        raise EmptyQuery("search needs at least one word to look for")
    return " AND ".join(terms)


def looks_like_fts_syntax(text: str) -> bool:
    """True when the words look like FTS5 syntax (``a OR b``, ``title:word``): worth a hint to use --fts."""
    return bool(_FTS_SYNTAX.search(text))


def _split_prefix(word: str) -> tuple[str, bool]:
    stripped = word.rstrip("*")
    return stripped, stripped != word


def _phrase(term: str) -> str:
    """One FTS5 string: the tokenizer, not the query parser, then reads the characters inside."""
    return '"' + term.replace('"', '""') + '"'
