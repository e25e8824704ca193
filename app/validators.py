"""Form validators with messages in the user's language."""
from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email
from wtforms.validators import DataRequired, InputRequired, Length, Optional, StopValidation, ValidationError

from app.errors import InvalidInput
from app.i18n import gettext as _
from app.i18n import lazy_gettext as _l
from app.text import digits, email_text, is_kana, phone_text, same_label, tidy


def required(message=None):
    return DataRequired(message=message or _l("入力してください。"))


def chosen(message=None):
    return InputRequired(message=message or _l("選んでください。"))


class _Length(Length):
    """Length without the field's maxlength attribute: a browser cuts a pasted text at it
    without a word (an address or a note half lost); the form says what is too long
    instead, keeping what was typed (as GOV.UK advises)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.field_flags = {}


def max_length(n: int):
    return _Length(max=n, message=_l("%(max)d文字以内で入力してください。", max=n))


optional = Optional


def is_valid_email(value: str) -> bool:
    """A syntactically valid address that mail can carry: ASCII only (a full-width ＠, or a
    name in kanji before the @, is a typing slip here; SMTPUTF8 is not offered by the
    providers councils use)."""
    if not value.isascii():
        return False
    try:
        validate_email(value, check_deliverability=False)
        return True
    except EmailNotValidError:
        return False


class Email:
    """A syntactically valid e-mail address (no DNS look-up), typed full-width or not (see
    email_text: the services store and look it up so; the field keeps what was typed)."""

    def __call__(self, form, field):
        if field.data and not is_valid_email(email_text(field.data)):
            raise ValidationError(_l("メールアドレスの形式が正しくありません（例: hanako@example.jp）。"))


class Kana:
    """Hiragana or katakana only."""

    def __call__(self, form, field):
        if field.data and not is_kana(field.data):
            raise ValidationError(_l("ふりがなは、ひらがなかカタカナで入力してください。"))


__all__ = ["required", "chosen", "max_length", "optional", "Email", "Kana",
           "StopValidation", "is_valid_email", "phone_problem", "unique_label"]


_PHONE = re.compile(r"[0-9()+\- ]*")


def phone_problem(value: str | None) -> str:
    """Why a phone (or fax) number as typed is not one — "" when it is, or when none was
    typed: ten or eleven digits from the area code, separated by hyphens, spaces or
    brackets if at all (a word beside it would be published in a tel: link)."""
    if not value:
        return ""
    if not _PHONE.fullmatch(phone_text(value)):
        return _("電話番号は数字とハイフン（-）だけで入力してください（例: 042-123-4567）。")
    if not 10 <= len(digits(value)) <= 11:
        return _("電話番号は市外局番から10〜11桁で入力してください（例: 042-123-4567）。")
    return ""


def unique_label(name: str | None, others, *, empty: str, taken: str, limit: int = 100) -> str:
    """The name of a thing (a category) as typed, spaces tidied: required, at most `limit`
    characters, and none of `others` (the names in use) as staff would read it (same_label).
    `empty` and `taken` are the messages; raises InvalidInput on the field "name"."""
    name = tidy(name)
    if not name:
        raise InvalidInput(empty, field="name")
    if len(name) > limit:
        raise InvalidInput(_("%(max)d文字以内で入力してください。", max=limit), field="name")
    if any(same_label(other, name) for other in others):
        raise InvalidInput(taken, field="name")
    return name

