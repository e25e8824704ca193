from flask_wtf.file import FileField
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.widgets import CheckboxInput, ListWidget

from app.forms import Form, OneTimeForm, bounded_int
from app.i18n import lazy_gettext as _l
from app.validators import Email, max_length, optional


def _checkboxes(label, coerce=str):
    return SelectMultipleField(label, coerce=coerce, choices=[], validate_choice=True,
                               widget=ListWidget(prefix_label=False), option_widget=CheckboxInput())


class AgencyForm(OneTimeForm):
    kind = SelectField(_l("種類"), choices=[])
    name = StringField(_l("名称"), validators=[optional(), max_length(200)])  # the service says
    kana = StringField(_l("ふりがな"), validators=[optional(), max_length(200)])
    phone = StringField(_l("電話番号"), validators=[optional(), max_length(40)])
    fax = StringField(_l("FAX番号"), validators=[optional(), max_length(40)])
    email = StringField(_l("メールアドレス"), validators=[optional(), Email(), max_length(254)])
    postal_code = StringField(_l("郵便番号"), validators=[optional(), max_length(10)])
    address = StringField(_l("住所"), validators=[optional(), max_length(300)])
    hours = StringField(_l("受付時間"), validators=[optional(), max_length(300)])
    contact_person = StringField(_l("担当者"), validators=[optional(), max_length(100)])
    area_ids = _checkboxes(_l("担当する圏域"), coerce=bounded_int)
    district_ids = _checkboxes(_l("担当する地区（圏域の一部だけのとき）"), coerce=bounded_int)
    category_codes = _checkboxes(_l("受ける相談の分類（選ばないときはすべて）"))
    notes = TextAreaField(_l("メモ（職員だけが見ます）"), validators=[optional(), max_length(5000)])
    active = BooleanField(_l("有効（つなぎ先の候補に出す）"), default=True)


class ImportForm(Form):
    file = FileField(_l("CSVファイル"))
