"""Calendar files (.ics) for sessions, written with icalendar in Japan time."""
from __future__ import annotations

from flask import current_app
from icalendar import Calendar, Event

from app.dbtypes import utcnow
from app.formatting import TOKYO


def session_calendar(sessions) -> bytes:
    """One VCALENDAR with a VEVENT per session; cancelled ones say STATUS:CANCELLED.

    Times carry the Asia/Tokyo zone (with its VTIMEZONE), so a phone anywhere shows the
    right hour.
    """
    calendar = Calendar()
    calendar.add("prodid", "-//Hot-Net//trainings//JA")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", "ほっとネット 研修")
    domain = current_app.config["HOTNET_MESSAGE_ID_DOMAIN"]
    for session in sessions:
        event = Event()
        event.add("uid", f"training-session-{session.id}@{domain}")
        event.add("dtstamp", utcnow())
        event.add("dtstart", session.starts_at.astimezone(TOKYO))
        event.add("dtend", session.ends_at.astimezone(TOKYO))
        event.add("summary", session.training.title)
        location = "、".join(x for x in (session.venue, session.address) if x)
        if location:
            event.add("location", location)
        if session.training.description:
            event.add("description", session.training.description)
        event.add("sequence", int(session.updated_at.timestamp()) if session.updated_at else 0)
        event.add("status", "CANCELLED" if session.cancelled_at else "CONFIRMED")
        calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()
