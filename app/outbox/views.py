"""The office's list of mail that did not reach its recipient, with retry."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from app.access import admin_required
from app.errors import InvalidState
from app.forms import ConfirmForm
from app.i18n import gettext as _
from app.outbox import services

bp = Blueprint("outbox", __name__)


@bp.get("/admin/mail")
@admin_required
def undelivered():
    return render_template("outbox/undelivered.html", sources=services.undelivered(current_user),
                           form=ConfirmForm())


@bp.post("/admin/mail/<int:message_id>/retry")
@admin_required
def retry(message_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        services.retry(current_user, message_id)
    except InvalidState as exc:
        flash(str(exc), "error")
    else:
        flash(_("もう一度送ります。数分以内に送信されます。"), "success")
    return redirect(url_for("outbox.undelivered"))
