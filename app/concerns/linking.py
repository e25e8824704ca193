"""Related concerns: linking by reference and finding likely duplicates."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.concerns.models import (
    Concern,
    ConcernLink,
)
from app.concerns.records import find_by_reference
from app.concerns.timeline import add_event
from app.errors import InvalidInput
from app.extensions import db
from app.i18n import gettext as _
from app.text import fold

# --- related concerns ---------------------------------------------------------------------------

def link_pair(concern: Concern, other: Concern) -> bool:
    low, high = sorted((concern.id, other.id))
    if db.session.get(ConcernLink, (low, high)) is not None:
        return False
    db.session.add(ConcernLink(low_id=low, high_id=high))
    return True


def link_concerns(concern: Concern, reference: str, *, actor) -> Concern:
    """Mark two concerns as about the same household or place."""
    if not (reference or "").strip():
        raise InvalidInput(_("関連する記録の受付番号を入力してください（例: HN-2026-000123）。"),
                           field="reference")
    other = find_by_reference(reference)
    if other is None:
        raise InvalidInput(_("受付番号（例: HN-2026-000123）が見つかりません。"), field="reference")
    if other.id == concern.id:
        raise InvalidInput(_("同じ記録どうしは関連づけられません。"), field="reference")
    if link_pair(concern, other):
        add_event(concern, "linked", actor, body=other.reference)
        add_event(other, "linked", actor, body=concern.reference)
        db.session.commit()
    return other


def unlink_concerns(concern: Concern, other_id: int) -> None:
    low, high = sorted((concern.id, other_id))
    link = db.session.get(ConcernLink, (low, high))
    if link is not None:
        db.session.delete(link)
        db.session.commit()


def related(concern: Concern) -> list[Concern]:
    ids = select(ConcernLink.high_id).where(ConcernLink.low_id == concern.id).union(
        select(ConcernLink.low_id).where(ConcernLink.high_id == concern.id))
    return list(db.session.scalars(select(Concern).where(Concern.id.in_(ids))
                                   .order_by(Concern.created_at.desc())))


def _bigrams(text: str) -> set[str]:
    folded = fold(text)
    return {folded[i:i + 2] for i in range(len(folded) - 1)} or ({folded} if folded else set())


def possible_duplicates(concern: Concern, days: int = 90, limit: int = 5,
                        linked: list[Concern] | None = None) -> list[tuple[Concern, int]]:
    """Recent concerns of the same district whose text looks alike, with a % likeness.

    Likeness is the overlap of two-character pieces of the folded texts (Dice coefficient);
    it needs no index and works for Japanese, which has no spaces between words.
    """
    if concern.district_id is None or not concern.body:
        return []
    since = concern.created_at - timedelta(days=days)
    linked_ids = {c.id for c in (related(concern) if linked is None else linked)}
    candidates = db.session.scalars(
        select(Concern).where(Concern.district_id == concern.district_id,
                              Concern.id != concern.id, Concern.created_at >= since,
                              Concern.created_at <= concern.created_at + timedelta(days=days),
                              Concern.erased_at.is_(None))
        .order_by(Concern.created_at.desc()).limit(300))
    mine = _bigrams(concern.body + concern.place)
    found = []
    for other in candidates:
        if other.id in linked_ids:
            continue
        theirs = _bigrams(other.body + other.place)
        if not mine or not theirs:
            continue
        score = 2 * len(mine & theirs) / (len(mine) + len(theirs))
        if score >= 0.3:
            found.append((other, round(score * 100)))
    found.sort(key=lambda pair: -pair[1])
    return found[:limit]
