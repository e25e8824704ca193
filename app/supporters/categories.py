"""Business categories (業種) of registered businesses."""
from __future__ import annotations

from functools import cache

from sqlalchemy import func, select

from app.audit import services as audit
from app.extensions import cache as shared_cache
from app.extensions import db
from app.i18n import gettext as _
from app.labels import Choice
from app.supporters.models import (
    BusinessCategory,
)
from app.text import clean
from app.validators import unique_label


@cache
def _in_order():
    """Built once: a statement is immutable, and building it costs more than running it."""
    return select(BusinessCategory).order_by(BusinessCategory.position, BusinessCategory.id)


def list_categories() -> list[BusinessCategory]:
    return list(db.session.scalars(_in_order()))


# The categories as the registry's filter names them, kept in the cache for a short while
# (every search shows the filter); adding or renaming one clears them.
CHOICES_KEY = "business-category-choices"


@shared_cache.cached(key_prefix=CHOICES_KEY)
def category_choices() -> list[Choice]:
    return [Choice(c.id, c.name, c.name_en) for c in list_categories()]


def _category_name(name: str, *, other_than: int | None = None) -> str:
    """The name as typed, required, and not another business category's
    (validators.unique_label)."""
    return unique_label(name, [c.name for c in list_categories() if c.id != other_than],
                        empty=_("業種名を入力してください。"), taken=_("同じ名前の業種があります。"))


def add_category(name: str, name_en: str = "", *, actor) -> BusinessCategory:
    name = _category_name(name)
    position = (db.session.scalar(select(func.max(BusinessCategory.position))) or 0) + 1
    code = f"c{position:03d}"
    while db.session.scalar(select(BusinessCategory).where(BusinessCategory.code == code)):
        position += 1
        code = f"c{position:03d}"
    category = BusinessCategory(code=code, name=name, name_en=clean(name_en), position=position)
    db.session.add(category)
    audit.record("category.create", "business_category", None, name, actor=actor)
    db.session.commit()
    shared_cache.delete(CHOICES_KEY)
    return category


def rename_category(category: BusinessCategory, name: str, name_en: str = "", *, actor) -> None:
    name = _category_name(name, other_than=category.id)
    category.name, category.name_en = name, clean(name_en)
    audit.record("category.update", "business_category", category.id, name, actor=actor)
    db.session.commit()
    shared_cache.delete(CHOICES_KEY)


DEFAULT_CATEGORIES = (
    ("real_estate", "不動産", "Real estate"),
    ("cleanup", "清掃・片付け", "Clean-up"),
    ("gardening", "造園・植木", "Gardening"),
    ("shop", "商店・飲食", "Shop"),
    ("care", "介護・福祉サービス", "Care provider"),
    ("other", "その他", "Other"),
)


def ensure_business_categories() -> None:
    """Create the shipped business categories that are missing (idempotent)."""
    for position, (code, name, name_en) in enumerate(DEFAULT_CATEGORIES):
        if db.session.scalar(select(BusinessCategory).where(BusinessCategory.code == code)) is None:
            db.session.add(BusinessCategory(code=code, name=name, name_en=name_en,
                                            position=position))
    db.session.commit()
    shared_cache.delete(CHOICES_KEY)
