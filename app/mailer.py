"""Sending single transactional e-mails (sign-in links, application outcomes)."""
from __future__ import annotations

from flask import current_app, render_template
from flask_mail import Message

from app.extensions import mail


def send_mail(to: str, subject: str, template: str,
              attachments: list[tuple[str, str, bytes]] | None = None, **context) -> None:
    """Render templates/mail/<template>.txt and send it as plain text, with optional
    attachments given as (filename, content type, data).

    Raises whatever the SMTP connection raises: callers decide whether a failure to
    notify must undo their change (it usually must not).
    """
    body = render_template(f"mail/{template}.txt", **context)
    message = Message(subject=subject, recipients=[to], body=body,
                      sender=current_app.config["MAIL_DEFAULT_SENDER"])
    for filename, content_type, data in attachments or ():
        message.attach(filename, content_type, data)
    mail.send(message)


def try_send_mail(to: str, subject: str, template: str,
                  attachments: list[tuple[str, str, bytes]] | None = None, **context) -> bool:
    """Like send_mail, but logs and returns False when the mail server fails."""
    try:
        send_mail(to, subject, template, attachments=attachments, **context)
        return True
    except Exception:  # noqa: BLE001 - any SMTP/socket failure; the change stands
        current_app.logger.exception("mail to %s failed (%s)", to, template)
        return False
