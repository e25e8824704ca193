"""Who did something, as stored with a record: a kind code and, for staff, the name.

Services take the acting account as an argument (`actor`): a staff user, a supporter, or
None for the system itself (the scheduler, a command). What is stored is a code ("staff",
"self", "reporter", "system") and, for staff, their name; the words are chosen when the
record is read, in the reader's language (`label`).
"""
from __future__ import annotations

from app.i18n import lazy_gettext as _l

KIND_LABELS = {
    "system": _l("システム（自動の処理）"),
    "self": _l("本人"),
    "reporter": _l("報告者"),
}


class _Someone:
    """A person who is not signed in (a visitor's report, an application)."""

    is_staff = False
    id = None


SOMEONE = _Someone()


def stamp(actor, *, other: str = "self") -> tuple[int | None, str, str]:
    """(staff_id, name, kind) for an acting account. A signed-in account that is not staff
    is `other` ("self" on a supporter's own record, "reporter" on a concern)."""
    if actor is None:
        return None, "", "system"
    if getattr(actor, "is_staff", False):
        return actor.id, actor.name, "staff"
    return None, "", other


def label(kind: str, name: str = "") -> str:
    """The words for a stored actor, in the reader's language."""
    if kind == "staff":
        return name
    return str(KIND_LABELS.get(kind, name or kind))
