from app.i18n import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.widgets import CheckboxInput, ListWidget

from app.validators import Email, Kana, max_length, optional, required


class StaffLoginForm(FlaskForm):
    email = EmailField(_l("メールアドレス"), validators=[required(), Email()])
    password = PasswordField(_l("パスワード"), validators=[required()])


class LinkRequestForm(FlaskForm):
    email = EmailField(_l("登録したメールアドレス"), validators=[required(), Email()])


class ConfirmForm(FlaskForm):
    """A form with only the CSRF token: for buttons that confirm an action."""


class StaffForm(FlaskForm):
    email = EmailField(_l("メールアドレス"), validators=[required(), Email(), max_length(254)])
    name = StringField(_l("氏名"), validators=[required(), max_length(100)])
    kana = StringField(_l("ふりがな"), validators=[optional(), Kana(), max_length(100)])
    role = SelectField(_l("役割"), choices=[])
    station_id = SelectField(_l("所属ステーション"), coerce=int, choices=[])
    area_ids = SelectMultipleField(
        _l("担当する圏域"), coerce=int, choices=[],
        widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(),
    )
    active = BooleanField(_l("有効（ログインできる）"), default=True)
    password = PasswordField(_l("パスワード（10文字以上。変更しないときは空欄）"),
                             validators=[optional(), max_length(200)])
