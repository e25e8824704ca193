from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.widgets import CheckboxInput, ListWidget

from app.forms import Form, OneTimeForm, bounded_int
from app.i18n import lazy_gettext as _l
from app.validators import Email, Kana, max_length, optional, required


class StaffLoginForm(Form):
    email = EmailField(_l("メールアドレス"), validators=[required(), Email()])
    password = PasswordField(_l("パスワード"), validators=[required()])


class StaffForm(OneTimeForm):
    email = EmailField(_l("メールアドレス"), validators=[required(), Email(), max_length(254)])
    name = StringField(_l("氏名"), validators=[required(), max_length(100)])
    kana = StringField(_l("ふりがな"), validators=[optional(), Kana(), max_length(100)])
    role = SelectField(_l("役割"), choices=[])
    station_id = SelectField(_l("所属ステーション"), coerce=bounded_int, choices=[])
    area_ids = SelectMultipleField(
        _l("担当する圏域"), coerce=bounded_int, choices=[],
        widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(),
    )
    all_areas = BooleanField(_l("すべての圏域の個人情報を見られる（ステーション長・事務局）"))
    active = BooleanField(_l("有効（ログインできる）"), default=True)
    password = PasswordField(_l("パスワード（10文字以上。変更しないときは空欄）"),
                             validators=[optional(), max_length(200)])


class CoverForm(Form):
    """An admin lets a staff member cover another area for a while."""

    area_id = SelectField(_l("応援する圏域"), coerce=bounded_int, choices=[])
    until = DateField(_l("いつまで（この日を含む）"), validators=[optional()])
