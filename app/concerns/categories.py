"""Concern categories (分類): the shipped ones and those staff add."""
from __future__ import annotations

from sqlalchemy import func, select

from app.audit import services as audit
from app.concerns import rules
from app.concerns.models import (
    ConcernCategory,
)
from app.dbtypes import utcnow
from app.errors import NotFound
from app.extensions import db
from app.i18n import gettext as _
from app.labels import localized
from app.partners import services as partners
from app.text import clean
from app.validators import unique_label

DEFAULT_CATEGORIES = (
    ("watch", "見守り・安否", "Wellbeing check"),
    ("isolation", "孤立・ひきこもり", "Isolation / withdrawal"),
    ("housing", "住まい・ごみ", "Housing / rubbish"),
    ("living", "生活の困りごと", "Daily-life difficulties"),
    ("children", "子ども・子育て", "Children / child-rearing"),
    ("elderly", "高齢・介護", "Old age / care"),
    ("disability", "障害", "Disability"),
    ("community", "地域の困りごと", "Neighbourhood issues"),
    ("other", "その他", "Other"),
)
# --- categories --------------------------------------------------------------------------

def ensure_concern_categories() -> None:
    """Add the standard categories that are missing (by code); never renames."""
    existing = set(db.session.scalars(select(ConcernCategory.code)))
    for position, (code, name, name_en) in enumerate(DEFAULT_CATEGORIES):
        if code not in existing:
            db.session.add(ConcernCategory(code=code, name=name, name_en=name_en,
                                           position=position))
    db.session.commit()


def list_categories(active_only: bool = False) -> list[ConcernCategory]:
    query = select(ConcernCategory).order_by(ConcernCategory.position, ConcernCategory.id)
    if active_only:
        query = query.where(ConcernCategory.active.is_(True))
    return list(db.session.scalars(query))


# Partner agencies record which categories they take, by code.
partners.CATEGORY_SOURCES.append(
    lambda: [(c.code, localized(c.name, c.name_en)) for c in list_categories(active_only=True)])


def _category_name(name: str, *, other_than: int | None = None) -> str:
    """The name as typed, required, and not another category's (validators.unique_label)."""
    return unique_label(name, [c.name for c in list_categories() if c.id != other_than],
                        empty=_("分類名を入力してください。"), taken=_("同じ名前の分類がすでにあります。"))


def get_category(category_id: int) -> ConcernCategory:
    category = db.session.get(ConcernCategory, category_id)
    if category is None:
        raise NotFound(category_id)
    return category


def add_category(name: str, name_en: str = "", *, actor) -> ConcernCategory:
    name = _category_name(name)
    position = (db.session.scalar(select(func.max(ConcernCategory.position))) or 0) + 1
    category = ConcernCategory(code=f"c{position}-{utcnow():%Y%m%d%H%M%S}", name=name,
                               name_en=clean(name_en)[:100], position=position)
    db.session.add(category)
    audit.record("concern_category.create", "concern_category", None, name, actor=actor)
    db.session.commit()
    _forget_pick_lists()
    return category


def update_category(category: ConcernCategory, name: str, name_en: str = "",
                    active: bool = True, *, actor) -> None:
    name = _category_name(name, other_than=category.id)
    category.name, category.name_en, category.active = name, clean(name_en)[:100], active
    audit.record("concern_category.update", "concern_category", category.id, name, actor=actor)
    db.session.commit()
    _forget_pick_lists()


def _forget_pick_lists() -> None:
    from app.extensions import cache
    cache.delete(rules.PICK_LISTS_KEY)
