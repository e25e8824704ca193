from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    TelField,
    TextAreaField,
    TimeField,
)

from app.forms import Form, OneTimeForm, bounded_int
from app.i18n import lazy_gettext as _l
from app.labels import CONCERN_CHANNEL, CONCERN_STATUS, URGENCY
from app.validators import max_length, optional


class ConcernForm(OneTimeForm):
    """The report form (気になること). Rules live in services.concern_problems."""

    category_id = SelectField(_l("どんなことですか"), coerce=bounded_int, choices=[])
    body = TextAreaField(_l("気になったこと"), validators=[optional(), max_length(5000)])
    district_id = SelectField(_l("地区"), coerce=bounded_int, choices=[])
    place = StringField(_l("場所や目印（○○公園の近く、など）"), validators=[optional(), max_length(200)])
    address = StringField(_l("住所（分かれば。職員だけが見ます）"), validators=[optional(), max_length(300)])
    noticed_on = DateField(_l("気づいた日"), validators=[optional()])
    urgency = RadioField(_l("急ぎ具合"), choices=list(URGENCY.items()), default="normal")
    photo = FileField(_l("写真（任意・JPEG か PNG）"))
    reporter_name = StringField(_l("お名前（任意）"), validators=[optional(), max_length(100)])
    reporter_email = EmailField(_l("メールアドレス（任意）"), validators=[optional(), max_length(254)])
    reporter_phone = TelField(_l("電話番号（任意）"), validators=[optional(), max_length(40)])
    may_contact = BooleanField(_l("職員から連絡してもかまいません"))


class StaffConcernForm(ConcernForm):
    """Staff taking a report by phone, visit, FAX or at the counter."""

    reported_on = DateField(_l("受けた日"), validators=[optional()])
    reported_time = TimeField(_l("受けた時刻"), validators=[optional()])

    channel = SelectField(_l("受付の方法"), choices=[(k, v) for k, v in CONCERN_CHANNEL.items()
                                                 if k != "web"], default="phone")
    reporter_name = StringField(_l("報告者のお名前"), validators=[optional(), max_length(100)])
    reporter_email = EmailField(_l("報告者のメールアドレス"), validators=[optional(), max_length(254)])
    reporter_phone = TelField(_l("報告者の電話番号"), validators=[optional(), max_length(40)])
    may_contact = BooleanField(_l("報告者に連絡してよい"))


class StatusForm(Form):
    status = SelectField(_l("新しい状態"), choices=list(CONCERN_STATUS.items()))
    duplicate_of = StringField(_l("重複元の受付番号（重複のとき）"), validators=[optional(), max_length(20)])
    note = TextAreaField(_l("内部メモ（任意）"), validators=[optional(), max_length(5000)])
    confirmed = HiddenField()  # "1" once the person confirmed closing with open referrals


class ReferralForm(OneTimeForm):
    agency_id = SelectField(_l("つなぎ先"), coerce=bounded_int, choices=[], validate_choice=False)
    referred_on = DateField(_l("つないだ日"), validators=[optional()])
    # Checked by the service with messages in the user's language (referral_problems).
    method = RadioField(_l("つないだ方法"), choices=[], validate_choice=False)
    consent = RadioField(_l("情報を伝えた根拠"), choices=[], validate_choice=False)
    passed_on = TextAreaField(_l("伝えたこと"), validators=[optional(), max_length(2000)])
    follow_up_on = DateField(_l("様子を確かめる日（任意）"), validators=[optional()])
    # Shown while the concern's status can go to つなぎ済 (the usual next step).
    connect = BooleanField(_l("気になることの状態を「つなぎ済」にする"), default=True)


class ReferralStatusForm(Form):
    status = SelectField(_l("経過"), choices=[], validate_choice=False)
    on = DateField(_l("日付"), validators=[optional()])
    follow_up_on = DateField(_l("次に確かめる日（任意）"), validators=[optional()])
    note = TextAreaField(_l("メモ（任意）"), validators=[optional(), max_length(2000)])


class HelpForm(OneTimeForm):
    need = SelectField(_l("お願いしたいこと"), choices=[], validate_choice=False)
    supporter_id = RadioField(_l("お願いする方"), coerce=bounded_int, choices=[],
                              validate_choice=False)
    message = TextAreaField(_l("お願いの内容（この文だけが相手に届きます）"),
                            validators=[optional(), max_length(1000)])


class AnswerForm(Form):
    answer = HiddenField()


class AssignForm(Form):
    assignee_id = SelectField(_l("担当者"), coerce=bounded_int, choices=[])


class NoteForm(OneTimeForm):
    body = TextAreaField(_l("内部メモ（職員だけが見ます）"), validators=[optional(), max_length(5000)])


class MessageForm(OneTimeForm):
    body = TextAreaField(_l("報告者へのメッセージ"), validators=[optional(), max_length(5000)])


class LinkForm(Form):
    reference = StringField(_l("関連する受付番号"), validators=[optional(), max_length(20)])


class CategoryForm(Form):
    name = StringField(_l("分類名"), validators=[optional(), max_length(100)])
    name_en = StringField(_l("英語名（任意）"), validators=[optional(), max_length(100)])
    active = BooleanField(_l("報告フォームに表示する"), default=True)
