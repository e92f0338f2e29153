"""Full-text search over a case's text, subject and sender, the same way on SQLite and PostgreSQL.

Neither database splits Chinese into words, so we do the splitting ourselves, once, in Python: a
case's *terms* are its lower-cased words (letters and digits) plus, for every run of Chinese
characters, its character bigrams (``市民投诉`` gives ``市民 民投 投诉``; a run of one character is kept
as it is). The terms live in ``case_search.terms`` (one row per case, written by ``create_case(s)``)
and are indexed by

- SQLite: an FTS5 external-content table ``case_search_fts`` kept in step by triggers;
- PostgreSQL: a GIN index over ``array_to_tsvector(string_to_array(terms, ' '))``, a tsvector of the
  terms exactly as we made them (no text-search parser or dictionary, so no extension and no
  language configuration is involved: the same terms match on both backends).

A query is split the same way and every one of its terms must be present (AND): ``噪音扰民`` finds
the cases containing ``噪音``, ``音扰`` and ``扰民``. Both index objects are created by migration 0008;
they are not ORM objects (``INDEX_OBJECTS`` names them for the schema comparison).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import ColumnElement, exists, literal_column, select, text
from sqlalchemy.orm import Session

from storage.models import Case, CaseSearch

#: created by migration 0008 outside the ORM (the FTS5 table with its shadow tables, the GIN index)
INDEX_OBJECTS = frozenset({
    "case_search_fts", "case_search_fts_data", "case_search_fts_idx", "case_search_fts_docsize",
    "case_search_fts_config", "case_search_fts_content", "ix_case_search_terms_gin",
})
#: a query may have at most this many terms (an AND of hundreds of terms is a mistake, not a search)
MAX_QUERY_TERMS = 32

# CJK Unified Ideographs (+ extension A, compatibility ideographs): searched by bigrams
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_HAN}]+|[^\W_{_HAN}]+")
_IS_HAN = re.compile(rf"[{_HAN}]")


def terms_of(*texts: str) -> list[str]:
    """The search terms of some texts, in order, each once: lower-cased words and Chinese bigrams."""
    seen: dict[str, None] = {}
    for value in texts:
        for token in _TOKEN.findall(value or ""):
            if _IS_HAN.match(token):
                if len(token) == 1:
                    seen.setdefault(token)
                for i in range(len(token) - 1):
                    seen.setdefault(token[i:i + 2])
            else:
                seen.setdefault(token.lower())
    return list(seen)


def case_terms(text_: str, subject: str, sender: str) -> str:
    """The ``case_search.terms`` value for a case: its terms joined by single spaces."""
    return " ".join(terms_of(subject, sender, text_))


def search_rows(case_ids: Iterable[int], texts: Iterable[tuple[str, str, str]]) -> list[dict[str, object]]:
    """Rows for ``case_search`` (``case_id``, ``terms``), one per case, from (text, subject, sender)."""
    return [{"case_id": case_id, "terms": case_terms(*values)}
            for case_id, values in zip(case_ids, texts, strict=True)]


def query_terms(query: str) -> list[str]:
    """The terms a query must all match.

    Raises:
        ValueError: the query has no letters, digits or Chinese characters, or too many terms.
    """
    terms = terms_of(query)
    if not terms:
        raise ValueError("the search has no words to look for (letters, digits or Chinese characters)")
    if len(terms) > MAX_QUERY_TERMS:
        raise ValueError(f"the search has {len(terms)} terms; at most {MAX_QUERY_TERMS} are allowed")
    return terms


def matching(session: Session, query: str) -> ColumnElement[bool]:
    """A condition on ``Case`` that is true for the cases matching every term of ``query``.

    Raises:
        ValueError: see ``query_terms``.
    """
    terms = query_terms(query)
    if session.get_bind().dialect.name == "postgresql":
        # the same expression as the GIN index, so the planner uses it; lexemes quoted for tsquery
        tsquery = " & ".join("'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in terms)
        found = select(CaseSearch.case_id).where(
            text("array_to_tsvector(string_to_array(case_search.terms, ' ')) @@ CAST(:tsq AS tsquery)")
            .bindparams(tsq=tsquery)
        )
        return exists(found.where(CaseSearch.case_id == Case.id))
    # FTS5: each term a quoted string; terms side by side are ANDed
    fts = " ".join('"' + t.replace('"', '""') + '"' for t in terms)
    return Case.id.in_(
        select(literal_column("rowid")).select_from(text("case_search_fts"))
        .where(text("case_search_fts MATCH :fts").bindparams(fts=fts))
    )
