"""One-time submission keys: a repeated form (a double click, a reload, a resend after a
timeout) shows the first result instead of storing a second.

Each public form carries a random key made when the form was shown. The service that stores
the submission writes the key first, in its own transaction; a second submission with the
same key finds it (or, when both arrive at once, waits on the unique key and then finds it)
and gets the first result back.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from datetime import datetime, timedelta

from flask import has_request_context, session
from sqlalchemy import String, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from app.dbtypes import UTCDateTime, utcnow
from app.errors import HotNetError
from app.extensions import db

_KEY = re.compile(r"[A-Za-z0-9_\-]{16,64}")


class SubmissionKey(db.Model):
    __tablename__ = "submission_key"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    # What the first submission made: an id and a reference people can read.
    result_id: Mapped[int | None] = mapped_column()
    result_ref: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlreadySubmitted(HotNetError):
    """This form was sent before; `first` is what the first submission made."""

    def __init__(self, first: SubmissionKey):
        super().__init__(first.kind)
        self.first = first


def new_key() -> str:
    return secrets.token_urlsafe(18)


def usable(key: str | None) -> str | None:
    """The key as sent, or None when it is missing or malformed (then nothing is deduplicated)."""
    return key if key and _KEY.fullmatch(key) else None


def claim(key: str | None, kind: str) -> SubmissionKey | None:
    """Write the key as the first step of storing a submission (the caller commits with the
    rest). Raises AlreadySubmitted with the first result when it was used before."""
    key = usable(key)
    if key is None:
        return None
    found = db.session.get(SubmissionKey, key)
    if found is None:
        found = SubmissionKey(key=key, kind=kind)
        db.session.add(found)
        try:
            db.session.flush()
            return found
        except IntegrityError:
            # The same form arrived twice at once and the other one got here first (it
            # waited on the key until the other committed).
            db.session.rollback()
            found = db.session.get(SubmissionKey, key)
            if found is None:
                raise
    raise AlreadySubmitted(found)


def record(slot: SubmissionKey | None, result_id: int, result_ref: str = "") -> None:
    """Remember what the submission made, in the same transaction."""
    if slot is not None:
        slot.result_id, slot.result_ref = result_id, result_ref[:40]


def create_once(key: str | None, kind: str, create):
    """Make a record with `create()` (a service call that stores it, commits and returns
    it) at most once per form key. Returns (the record, None) the first time; when the same
    form comes again — a double click, Back and send — (None, the first record's id, or None
    while the first is still being stored), after rolling back what the repeat began. When
    `create()` raises, the caller rolls back (the key goes with the rest)."""
    try:
        slot = claim(key, kind)
    except AlreadySubmitted as exc:
        db.session.rollback()
        return None, exc.first.result_id
    made = create()
    if slot is not None:
        record(slot, made.id)
        db.session.commit()
    return made, None


def first_result(key: str | None, kind: str) -> SubmissionKey | None:
    """The first result of this key, when the form was already stored."""
    key = usable(key)
    found = db.session.get(SubmissionKey, key) if key else None
    return found if found is not None and found.kind == kind and found.result_id else None


def purge(days: int = 30) -> int:
    """Forget keys older than `days` (run by the scheduler)."""
    cutoff = utcnow() - timedelta(days=days)
    removed = db.session.execute(delete(SubmissionKey).where(SubmissionKey.created_at < cutoff))
    db.session.commit()
    return removed.rowcount or 0


# --- the Back button ---------------------------------------------------------------------------
# Pages are never cached (they carry personal data), so Back fetches the form again with a new
# key while the browser fills in what was typed: the same content sent again from the same
# browser soon after is the same submission. Only a digest is kept in the session cookie.
REPEAT_SECONDS = 30 * 60


def _digest(content: dict) -> str:
    text = json.dumps(content, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def key_for(kind: str, content: dict, form_key: str | None) -> str | None:
    """The form's key — or the first submission's, when this browser sent exactly this
    content for this kind of form within the last half hour."""
    if has_request_context():
        recent = session.get("recent_submissions", {}).get(kind)
        if recent and recent.get("digest") == _digest(content) and \
                time.time() - recent.get("at", 0) < REPEAT_SECONDS and usable(recent.get("key")):
            return recent["key"]
    return form_key


def remember(kind: str, content: dict, key: str | None) -> None:
    """After a submission was stored (or found stored), remember it for key_for."""
    if has_request_context() and usable(key):
        recent = dict(session.get("recent_submissions", {}))
        recent[kind] = {"digest": _digest(content), "key": key, "at": int(time.time())}
        session["recent_submissions"] = recent
