"""Reading the messages the demo mail catcher stored."""
from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from app.errors import NotFound

# The catcher names files "<nanoseconds>-<hex>"; anything else is not one of ours.
_KEY = re.compile(r"[0-9A-Za-z_\-]{1,100}")


@dataclass
class CaughtMessage:
    key: str
    received_at: datetime
    subject: str
    to: str
    sender: str
    body: str


def _parse(path: Path) -> CaughtMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    part = message.get_body(preferencelist=("plain", "html"))
    body = part.get_content() if part is not None else ""
    stamp = int(path.name.split("-", 1)[0]) / 1e9
    return CaughtMessage(key=path.stem, received_at=datetime.fromtimestamp(stamp, timezone.utc),
                         subject=str(message.get("Subject", "")), to=str(message.get("To", "")),
                         sender=str(message.get("From", "")), body=body)


def list_messages(folder: str, limit: int = 100) -> list[CaughtMessage]:
    """The newest messages first."""
    paths = sorted(Path(folder).glob("*.eml"), reverse=True)[:limit]
    return [_parse(p) for p in paths]


def get_message(folder: str, key: str) -> CaughtMessage:
    if not _KEY.fullmatch(key or ""):
        raise NotFound(key)
    path = Path(folder) / f"{key}.eml"
    if not path.is_file():
        raise NotFound(key)
    return _parse(path)
