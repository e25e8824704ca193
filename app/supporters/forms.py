from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.validators import InputRequired
from wtforms.widgets import CheckboxInput, ListWidget

from app.forms import Form, OneTimeForm, bounded_int
from app.i18n import lazy_gettext as _l
from app.labels import DELIVERY, HELP_KIND, JOINED_VIA, KIND, STATUS
from app.validators import Email, max_length, optional, required

_DELIVERY_CHOICES = [(code, label) for code, label in DELIVERY.items()]


class ContactFields(Form):
    """Contact details shared by every supporter form."""

    email = EmailField(_l("メールアドレス（お持ちの方のみ）"), validators=[optional(), max_length(254)])
    phone = TelField(_l("電話番号"), validators=[optional(), max_length(40)])
    postal_code = StringField(_l("郵便番号"), validators=[optional(), max_length(10)])
    address = StringField(_l("住所"), validators=[optional(), max_length(300)])
    district_id = SelectField(_l("お住まいの地区"), coerce=bounded_int, choices=[])
    delivery = RadioField(_l("通信（ニュースレター）の受け取り方"), choices=_DELIVERY_CHOICES,
                          default="post",
                          validators=[InputRequired(message=_l("選んでください。"))])


class HelpFields(Form):
    """What a supporter or business can help with, and when (for requests for help)."""

    can_help = SelectMultipleField(
        _l("協力できること（いくつでも）"), choices=list(HELP_KIND.items()), validate_choice=False,
        widget=ListWidget(prefix_label=False), option_widget=CheckboxInput())
    help_times = StringField(_l("協力できる時間帯（例: 平日の午前、土曜日）"),
                             validators=[optional(), max_length(200)])


class ProfileForm(ContactFields, HelpFields):
    """What supporters edit about themselves."""


class PersonFields(ContactFields):
    name = StringField(_l("氏名"), validators=[optional(), max_length(100)])
    kana = StringField(_l("ふりがな"), validators=[optional(), max_length(100)])


_CONTACT_ORDER = ("email", "phone", "postal_code", "address", "district_id", "delivery")


class ApplicationForm(PersonFields, OneTimeForm):
    page_order = ("name", "kana", *_CONTACT_ORDER, "consent")
    consent = BooleanField(_l("個人情報の取扱いについて読み、同意します"),
                           validators=[InputRequired(message=_l("同意いただける場合はチェックしてください。"))])


class BusinessApplicationForm(ContactFields, OneTimeForm):
    page_order = ("business_name", "business_kana", "business_category_id", "contact_person",
                  *_CONTACT_ORDER, "consent")
    business_name = StringField(_l("事業所名"), validators=[optional(), max_length(200)])
    business_kana = StringField(_l("事業所名のふりがな"), validators=[optional(), max_length(200)])
    business_category_id = SelectField(_l("業種"), coerce=bounded_int, choices=[])
    contact_person = StringField(_l("ご担当者のお名前"), validators=[optional(), max_length(100)])
    district_id = SelectField(_l("事業所のある地区"), coerce=bounded_int, choices=[])
    consent = BooleanField(_l("個人情報の取扱いについて読み、同意します"),
                           validators=[InputRequired(message=_l("同意いただける場合はチェックしてください。"))])


class SupporterForm(PersonFields, HelpFields, OneTimeForm):
    """The staff form: every field of the record."""

    page_order = ("kind", "name", "kana", "business_name", "business_kana",
                  "business_category_id", "contact_person", *_CONTACT_ORDER, "can_help",
                  "help_times", "status", "joined_via", "joined_on", "registration_training_on",
                  "notes")

    kind = RadioField(_l("種別"), choices=list(KIND.items()), default="person")
    district_id = SelectField(_l("地区"), coerce=bounded_int, choices=[])
    business_name = StringField(_l("事業所名"), validators=[optional(), max_length(200)])
    business_kana = StringField(_l("事業所名のふりがな"), validators=[optional(), max_length(200)])
    business_category_id = SelectField(_l("業種"), coerce=bounded_int, choices=[])
    contact_person = StringField(_l("担当者"), validators=[optional(), max_length(100)])
    status = SelectField(_l("状態"), choices=[(k, v) for k, v in STATUS.items()
                                            if k in ("applied", "active", "paused")],
                         default="active")
    joined_via = SelectField(_l("登録のきっかけ"), choices=list(JOINED_VIA.items()), default="staff")
    joined_on = DateField(_l("登録日"), validators=[optional()])
    registration_training_on = DateField(_l("登録研修の受講日"), validators=[optional()])
    notes = TextAreaField(_l("職員メモ（職員だけが見られます）"), validators=[optional(), max_length(5000)])
    delivery = SelectField(_l("通信の受け取り方"), choices=_DELIVERY_CHOICES, default="post")


class ImportForm(Form):
    file = FileField(_l("CSVファイル"))


class CategoryForm(Form):
    name = StringField(_l("業種名"), validators=[optional(), max_length(100)])
    name_en = StringField(_l("英語名（任意）"), validators=[optional(), max_length(100)])


class EmailConfirmForm(Form):
    """A supporter whose mail bounced says which address works now."""

    email = EmailField(_l("メールアドレス"), validators=[optional(), max_length(254)])
    delivery = RadioField(_l("通信（ニュースレター）の受け取り方"), choices=_DELIVERY_CHOICES,
                          validators=[InputRequired(message=_l("選んでください。"))])


class LinkRequestForm(Form):
    email = EmailField(_l("登録したメールアドレス"), validators=[required(), Email()])
