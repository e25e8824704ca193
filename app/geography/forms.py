"""The one form of the geography pages: a station's contact details."""
from wtforms import StringField, TelField

from app.forms import Form
from app.geography.services import CONTACT
from app.i18n import lazy_gettext as _l
from app.validators import max_length, optional


class StationContactForm(Form):
    address = StringField(_l("住所"), validators=[optional(), max_length(CONTACT["address"])])
    phone = TelField(_l("電話番号"), validators=[optional(), max_length(CONTACT["phone"])])
