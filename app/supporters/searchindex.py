"""The search index of supporters' terms: how a query for it is written on each database.

The terms (Supporter.search_terms) and the index itself are described with the model
(SEARCH_INDEX_SQLITE, and the GIN index in Supporter.__table_args__).
"""
from __future__ import annotations

from sqlalchemy import cast, column, func, literal_column, select, table
from sqlalchemy.dialects.postgresql import TSQUERY

from app.extensions import db
from app.supporters.models import SEARCH_TABLE, Supporter


def dialect_name() -> str:
    return db.session.get_bind().dialect.name


def terms_query(terms, *, prefix: bool, dialect: str) -> str:
    """The search index's query for supporters with any of these terms (or, with `prefix`, a
    term that starts with one): see "the search index" in app.supporters.models."""
    if dialect == "postgresql":
        star = ":*" if prefix else ""
        return " | ".join("'" + t.replace("\\", "\\\\").replace("'", "''") + "'" + star
                          for t in terms)
    star = "*" if prefix else ""
    return " OR ".join('"' + t.replace('"', '""') + '"' + star for t in terms)


_INDEX = table(SEARCH_TABLE, column("rowid"))


def matching(query, dialect: str):
    """Supporters the search index finds by `query` (a value or parameter: terms_query)."""
    if dialect == "postgresql":
        terms = func.array_to_tsvector(func.string_to_array(Supporter.search_terms,
                                                            literal_column("' '")))
        return terms.op("@@")(cast(query, TSQUERY))
    return Supporter.id.in_(select(_INDEX.c.rowid).where(
        literal_column(SEARCH_TABLE).op("MATCH")(query)))


def with_terms(query, terms, *, prefix: bool = False):
    """Narrow a supporter query to those with any of these (folded) terms."""
    dialect = dialect_name()
    return query.where(matching(terms_query(terms, prefix=prefix, dialect=dialect), dialect))
