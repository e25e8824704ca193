from wtforms import BooleanField, IntegerField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields import DateField, TimeField

from app.forms import Form, OneTimeForm, bounded_int
from app.i18n import lazy_gettext as _l
from app.labels import TRAINING_KIND
from app.validators import max_length, optional


class TrainingForm(OneTimeForm):
    title = StringField(_l("研修の名前"), validators=[optional(), max_length(200)])
    kind = RadioField(_l("種類"), choices=list(TRAINING_KIND.items()), default="communication")
    description = TextAreaField(_l("内容の説明"), validators=[optional(), max_length(5000)])
    published = BooleanField(_l("公開する（研修の一覧に載せ、申込みを受け付ける）"))


class SessionForm(OneTimeForm):
    day = DateField(_l("開催日"), validators=[optional()])
    start_time = TimeField(_l("開始時刻（日本時間）"), validators=[optional()])
    end_time = TimeField(_l("終了時刻"), validators=[optional()])
    station_id = SelectField(_l("会場（ステーション）"), coerce=bounded_int, choices=[])
    venue_name = StringField(_l("会場名（ステーション以外のとき）"), validators=[optional(), max_length(200)])
    venue_address = StringField(_l("会場の住所"), validators=[optional(), max_length(300)])
    capacity = IntegerField(_l("定員"), validators=[optional()])
    signup_deadline = DateField(_l("申込みの締切日（空欄なら開催日の2日前）"), validators=[optional()])
    cancel_deadline = DateField(_l("取消しの締切日（空欄なら開催日の前日）"), validators=[optional()])
    notes = TextAreaField(_l("持ち物・注意事項など"), validators=[optional(), max_length(5000)])


class AttendanceForm(Form):
    """Only the CSRF token: the marks come as attendance-<registration id> fields."""
