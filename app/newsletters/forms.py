from flask_wtf.file import FileField
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields import DateField, TimeField
from wtforms.widgets import CheckboxInput, ListWidget

from app.forms import Form, OneTimeForm, bounded_int
from app.i18n import lazy_gettext as _l
from app.validators import max_length, optional


class NewsletterForm(OneTimeForm):
    layout = SelectField(_l("レイアウト"), choices=[])
    number = StringField(_l("号数（例: 第12号）"), validators=[optional(), max_length(40)])
    title = StringField(_l("題名"), validators=[optional(), max_length(200)])
    subject = StringField(_l("メールの件名"), validators=[optional(), max_length(200)])
    body_md = TextAreaField(_l("本文（Markdown: ## 見出し、- 箇条書き、**太字**、[リンク](https://…)）"),
                            validators=[optional(), max_length(100000)])
    image = FileField(_l("画像（任意。JPEG か PNG）"))
    remove_image = BooleanField(_l("今の画像を外す"))
    station_id = SelectField(_l("ステーション"), coerce=bounded_int, choices=[], default=0)
    area_id = SelectField(_l("圏域"), coerce=bounded_int, choices=[])
    district_ids = SelectMultipleField(
        _l("地区（いくつでも選べます。選ばなければすべて）"), coerce=bounded_int, choices=[],
        widget=ListWidget(prefix_label=False), option_widget=CheckboxInput())
    kind = SelectField(_l("種別"), choices=[])
    category_id = SelectField(_l("業種"), coerce=bounded_int, choices=[])
    training_id = SelectField(_l("受講した研修"), coerce=bounded_int, choices=[], default=0)
    stats_from = DateField(_l("気になることの件数を載せる期間（から）"), validators=[optional()])
    include_trainings = BooleanField(_l("これからの研修の案内（日時・会場・残りの席・申込みの案内）を載せる"))
    stats_to = DateField(_l("気になることの件数を載せる期間（まで）"), validators=[optional()])


class ScheduleForm(Form):
    send_date = DateField(_l("送信する日"), validators=[optional()])
    send_time = TimeField(_l("時刻（日本時間）"), validators=[optional()])
