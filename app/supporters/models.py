from __future__ import annotations

import string
from datetime import date, datetime

from sqlalchemy import DDL, JSON, Date, ForeignKey, Index, Integer, String, Text, event, func
from sqlalchemy import literal_column as sql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.dbtypes import UTCDateTime, binary_string, utcnow
from app.extensions import db
from app.geography.models import District

KINDS = ("person", "business")
DELIVERIES = ("email", "post", "both", "none")
STATUSES = ("applied", "active", "paused", "withdrawn", "declined")
JOINED_VIA = ("application", "staff", "former_consultee")


class BusinessCategory(db.Model):
    """A kind of local business (不動産, 清掃 …); admins extend the list."""

    __tablename__ = "business_category"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)


# PostgreSQL's index of the search terms (see "the search index" below).
SEARCH_INDEX_PG = "ix_supporter_search_terms"


class Supporter(db.Model):
    """A registered supporter: a person, or a business with a contact person."""

    __tablename__ = "supporter"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), default="person")
    name: Mapped[str] = mapped_column(String(100), default="")
    kana: Mapped[str] = mapped_column(String(100), default="")
    business_name: Mapped[str] = mapped_column(String(200), default="")
    business_kana: Mapped[str] = mapped_column(String(200), default="")
    business_category_id: Mapped[int | None] = mapped_column(ForeignKey("business_category.id"))
    contact_person: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    email_key: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str] = mapped_column(String(40), default="")
    postal_code: Mapped[str] = mapped_column(String(10), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    district_id: Mapped[int | None] = mapped_column(ForeignKey("district.id"), index=True)
    delivery: Mapped[str] = mapped_column(String(10), default="post")
    status: Mapped[str] = mapped_column(String(20), default="applied", index=True)
    joined_via: Mapped[str] = mapped_column(String(30), default="staff")
    joined_on: Mapped[date | None] = mapped_column(Date)
    registration_training_on: Mapped[date | None] = mapped_column(Date)
    notes: Mapped[str] = mapped_column(Text, default="")
    # What they can help with (HELP_KIND codes) and when, for requests for help (協力依頼).
    can_help: Mapped[list] = mapped_column(JSON, default=list)
    help_times: Mapped[str] = mapped_column(String(200), default="")
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_version: Mapped[str] = mapped_column(String(40), default="")
    sort_key: Mapped[str] = mapped_column(binary_string(200), default="")
    # The folded terms a prefix search finds the supporter by, separated by spaces (kept in
    # step by app.supporters.search; indexed as "the search index" below says).
    search_terms: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the supporter unsubscribed from the e-mail newsletter (one click in a message).
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when mail to the address bounced for good (or too often): newsletters go by post and
    # the supporter is asked to confirm a new address at their next sign-in.
    email_held_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email_hold_reason: Mapped[str] = mapped_column(String(300), default="", server_default="")
    soft_bounces: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Part of the id in the session cookie; raised on sign-out to end every session.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    district: Mapped[District | None] = relationship()
    business_category: Mapped[BusinessCategory | None] = relationship()

    __table_args__ = (
        Index("ix_supporter_sort", "sort_key", "id"),
        # PostgreSQL finds the terms by a GIN index of them as a tsvector (SQLite by its FTS5
        # table, SEARCH_INDEX_SQLITE)
        Index(SEARCH_INDEX_PG,
              func.array_to_tsvector(func.string_to_array(sql("search_terms"), sql("' '"))),
              postgresql_using="gin").ddl_if(dialect="postgresql"),
    )

    # Flask-Login protocol: a supporter signed in with a one-time link.
    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_supporter = True
    is_admin = False

    @property
    def is_active(self) -> bool:
        return self.status in ("applied", "active", "paused")

    def get_id(self) -> str:
        return f"supporter:{self.id}:{self.session_generation or 0}"

    @property
    def display_name(self) -> str:
        if self.kind == "business":
            return self.business_name or self.name
        return self.name

    @property
    def salutation(self) -> str:
        """How a letter or e-mail addresses them: 山田 太郎 様; a business 御中, or its
        contact person 様 (Japanese business etiquette)."""
        return salutation(self.kind, self.name, self.business_name, self.contact_person)

    @property
    def display_kana(self) -> str:
        return self.business_kana if self.kind == "business" else self.kana


def salutation(kind: str, name: str, business_name: str = "", contact_person: str = "") -> str:
    """The addressee with its honorific, in the reader's language."""
    from app.i18n import gettext as _

    if kind == "business" and business_name:
        if contact_person:
            return _("%(business)s %(name)s 様", business=business_name, name=contact_person)
        return _("%(business)s 御中", business=business_name)
    return _("%(name)s 様", name=name)


# --- the search index --------------------------------------------------------------------
# A prefix search looks for a supporter's terms (Supporter.search_terms) that start with the
# folded text typed. Terms hold no spaces (fold removes them) and are indexed whole:
# - SQLite: an FTS5 table over the column (external content: it keeps only the index), kept
#   in step by triggers; the "ascii" tokenizer splits on spaces only (every other character,
#   punctuation too, belongs to a term; non-ASCII always does). Query: '"term"*'.
# - PostgreSQL: a GIN index of the terms as a tsvector (Supporter.__table_args__). Query:
#   "'term':*" as a tsquery. New entries wait in the index's pending list (up to 4 MB, read
#   by every search) until VACUUM; an import, which adds thousands, files them at its end
#   (when its account owns the index, as PostgreSQL requires).
# Writing ten thousand supporters' terms this way takes a quarter of the time that rows of
# a (term, supporter) table took, and a prefix query is as quick.
SEARCH_TABLE = "supporter_fts"
_TOKENIZER = "ascii tokenchars '" + string.punctuation.replace("'", "''") + "'"
SEARCH_INDEX_SQLITE = (
    f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5(search_terms, content='supporter', "
    f"content_rowid='id', detail=none, columnsize=0, "
    f"tokenize='{_TOKENIZER.replace(chr(39), chr(39) * 2)}')",
    f"CREATE TRIGGER {SEARCH_TABLE}_insert AFTER INSERT ON supporter BEGIN "
    f"INSERT INTO {SEARCH_TABLE}(rowid, search_terms) VALUES (new.id, new.search_terms); END",
    f"CREATE TRIGGER {SEARCH_TABLE}_delete AFTER DELETE ON supporter BEGIN "
    f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}, rowid, search_terms) "
    f"VALUES ('delete', old.id, old.search_terms); END",
    f"CREATE TRIGGER {SEARCH_TABLE}_update AFTER UPDATE OF search_terms ON supporter BEGIN "
    f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}, rowid, search_terms) "
    f"VALUES ('delete', old.id, old.search_terms); "
    f"INSERT INTO {SEARCH_TABLE}(rowid, search_terms) VALUES (new.id, new.search_terms); END",
)


def is_search_index(name: str) -> bool:
    """Whether a table is SQLite's search index or one of its own (not a model's table)."""
    return name == SEARCH_TABLE or name.startswith(SEARCH_TABLE + "_")


for _statement in SEARCH_INDEX_SQLITE:
    event.listen(Supporter.__table__, "after_create",
                 DDL(_statement.replace("%", "%%")).execute_if(dialect="sqlite"))
event.listen(Supporter.__table__, "before_drop",
             DDL(f"DROP TABLE IF EXISTS {SEARCH_TABLE}").execute_if(dialect="sqlite"))


class SupporterChange(db.Model):
    """One entry of a supporter's history: who changed what, and when."""

    __tablename__ = "supporter_change"
    id: Mapped[int] = mapped_column(primary_key=True)
    supporter_id: Mapped[int] = mapped_column(
        ForeignKey("supporter.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(200))  # a staff member's name (else "")
    actor_kind: Mapped[str] = mapped_column(String(10), default="staff")  # see app.actors
    action: Mapped[str] = mapped_column(String(40))
    changes: Mapped[dict] = mapped_column(JSON, default=dict)

    staff = relationship("StaffUser")


class SupporterImport(db.Model):
    """An uploaded CSV waiting for the user's choice after the dry run.

    Its checked rows (SupporterImportRow) are kept only until it is imported or discarded;
    `summary` holds the dry run's counts ({"total", "ok", "mobile"}), "missing_headers" and
    "ignored_headers" (columns the registry has no place for), and the rows per district.
    """

    __tablename__ = "supporter_import"
    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    filename: Mapped[str] = mapped_column(String(200), default="")
    encoding: Mapped[str] = mapped_column(String(20), default="")
    content: Mapped[str] = mapped_column(Text, default="")  # no longer written (rows instead)
    summary: Mapped[dict] = mapped_column(JSON, default=dict)

    rows: Mapped[list["SupporterImportRow"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True)


class SupporterImportRow(db.Model):
    """One row of a staged import, as the dry run read and checked it: the data to write
    (`data`, normalised) or the problems in the user's language. The keys let duplicates
    within the file be found by the database rather than held in memory."""

    __tablename__ = "supporter_import_row"
    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(
        ForeignKey("supporter_import.id", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(default=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    email_key: Mapped[str] = mapped_column(String(254), default="")
    name_key: Mapped[str] = mapped_column(String(300), default="")
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    problems: Mapped[list] = mapped_column(JSON, default=list)

    __table_args__ = (
        Index("ix_supporter_import_row_ok", "import_id", "ok", "line"),
        # Rows repeating an earlier row's keys are found in these indexes' order: grouping
        # a file of any length then holds no sort in memory.
        Index("ix_supporter_import_row_email_key", "import_id", "email_key", "line"),
        Index("ix_supporter_import_row_name_key", "import_id", "name_key", "line"),
    )


class LoginLink(db.Model):
    """A one-time sign-in link sent to a supporter. Only the token's hash is stored."""

    __tablename__ = "login_link"
    id: Mapped[int] = mapped_column(primary_key=True)
    supporter_id: Mapped[int] = mapped_column(
        ForeignKey("supporter.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when a newer link of the same supporter was used: this one no longer works.
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
