"""Staff read the demo mail catcher's messages (only when HOTNET_MAILCATCHER_DIR is set)."""
from flask import Blueprint, abort, current_app, render_template

from app.access import staff_required
from app.mailcatcher.services import get_message, list_messages

bp = Blueprint("mailcatcher", __name__)


def _folder() -> str:
    folder = current_app.config.get("HOTNET_MAILCATCHER_DIR")
    if not folder:
        abort(404)
    return folder


@bp.get("/staff/mailbox")
@staff_required
def inbox():
    return render_template("mailcatcher/inbox.html", messages=list_messages(_folder()))


@bp.get("/staff/mailbox/<key>")
@staff_required
def message(key: str):
    caught = get_message(_folder(), key)
    return render_template("mailcatcher/message.html", message=caught)
