"""The base of every form: Flask-WTF (CSRF), plus the checks every field needs.

Whatever a person or a script sends, a form either accepts it or says what is wrong beside
the field, keeping the rest of what was typed:
- characters nobody types (NUL, escapes, C1 controls; line breaks outside text areas)
  are refused with a message, and taken out of the value shown again;
- numbers chosen from a list are whole numbers the database can hold (`bounded_int`).
"""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, TextAreaField

from app.i18n import lazy_gettext as _l
from app.site import MAX_ID, has_control_characters, strip_control_characters

CONTROL_MESSAGE = _l("使えない文字（制御文字）が含まれていたので取り除きました。内容を確かめて、もう一度送ってください。")


def bounded_int(value) -> int:
    """WTForms `coerce` for pick lists: a whole number 0…MAX_ID, else ValueError (shown as
    "not a valid choice", never a database overflow)."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not text.isascii() or not text.isdigit() or len(text) > 10:
            raise ValueError(value)
        number = int(text)
    if not 0 <= number <= MAX_ID:
        raise ValueError(value)
    return number


class Form(FlaskForm):
    """Flask-WTF's form with the site-wide input rules."""

    # The fields in the order the page shows them, where that is not the order they were
    # declared in (shared groups of fields come first from their mixins): the error summary
    # lists the problems in this order, then those of any field not named here.
    page_order: tuple[str, ...] = ()

    def in_page_order(self) -> list:
        place = {name: n for n, name in enumerate(self.page_order)}
        return sorted(self, key=lambda field: place.get(field.name, len(place)))

    def process(self, *args, **kwargs) -> None:
        super().process(*args, **kwargs)
        # Taken out as soon as the data arrives, so that nothing downstream (a service's
        # checks, a database query) ever sees them; the message waits for validate().
        self._refused_controls = []
        for field in self:
            data = field.data
            if not isinstance(data, str) or field.type in ("CSRFTokenField", "PasswordField"):
                continue
            multiline = isinstance(field, TextAreaField)
            if has_control_characters(data, multiline=multiline):
                field.data = strip_control_characters(data, multiline=multiline)
                field.raw_data = [field.data]
                self._refused_controls.append(field)

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for field in getattr(self, "_refused_controls", ()):
            field.errors = list(field.errors) + [str(CONTROL_MESSAGE)]
            valid = False
        if not valid:
            mark_errors()
        return valid


def mark_errors() -> None:
    """The page about to be shown holds a form with errors: its title says so first."""
    from flask import g, has_request_context
    if has_request_context():
        g.form_has_errors = True


class OneTimeForm(Form):
    """A public form that must store at most once: it carries a random key made when it was
    shown (kept through error pages), which the service records with what it stored."""

    submission_key = HiddenField()

    def process(self, *args, **kwargs) -> None:
        super().process(*args, **kwargs)
        from app.submissions import new_key, usable
        if not usable(self.submission_key.data):
            self.submission_key.data = new_key()


class ConfirmForm(Form):
    """Only the CSRF token: for buttons that confirm an action."""
