"""What makes mail from Hot-Net trusted and traceable: a per-recipient return path (VERP)
that tells which message bounced, signed so that it cannot be forged, and DKIM signatures.

- VERP: with HOTNET_BOUNCE_ADDRESS = bounces@example.jp, a message for ledger row 123 of the
  newsletter deliveries goes out with the envelope sender bounces+d123-<signature>@example.jp;
  a bounce that comes back to that address names the row. Off when the setting is empty.
- DKIM: with HOTNET_DKIM_DOMAIN, HOTNET_DKIM_SELECTOR and HOTNET_DKIM_KEY_FILE set, every
  message is signed (dkimpy) just before it is handed to the mail server.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache
from pathlib import Path

from flask import current_app

# d: a newsletter delivery row; o: an outbox message
_TOKEN = re.compile(r"^(?P<kind>[do])(?P<id>\d{1,12})-(?P<sig>[0-9a-f]{10})$")
SIGNED_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version",
                  b"content-type", b"reply-to", b"list-id", b"list-unsubscribe",
                  b"list-unsubscribe-post"]


def _signature(kind: str, row_id: int) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"verp:{kind}{row_id}".encode(), hashlib.sha256).hexdigest()[:10]


def return_path(kind: str, row_id: int) -> str | None:
    """The envelope sender for one message (None: use the From address)."""
    address = current_app.config.get("HOTNET_BOUNCE_ADDRESS") or ""
    if "@" not in address:
        return None
    local, _, domain = address.partition("@")
    return f"{local}+{kind}{row_id}-{_signature(kind, row_id)}@{domain}"


def read_return_path(address: str) -> tuple[str, int] | None:
    """(kind, row id) from an address this app gave out; None for anything else (a forged or
    damaged token proves nothing)."""
    local = (address or "").strip().strip("<>").partition("@")[0]
    _, plus, token = local.partition("+")
    found = _TOKEN.match(token) if plus else None
    if found is None:
        return None
    kind, row_id = found["kind"], int(found["id"])
    if not hmac.compare_digest(found["sig"], _signature(kind, row_id)):
        return None
    return kind, row_id


@lru_cache(maxsize=4)
def _private_key(path: str) -> bytes:
    return Path(path).read_bytes()


def dkim_configured() -> bool:
    config = current_app.config
    return bool(config.get("HOTNET_DKIM_DOMAIN") and config.get("HOTNET_DKIM_SELECTOR")
                and config.get("HOTNET_DKIM_KEY_FILE"))


def dkim_sign(data: bytes) -> bytes:
    """The message with a DKIM-Signature header on top (unchanged when DKIM is not set up)."""
    if not dkim_configured():
        return data
    import dkim

    config = current_app.config
    header = dkim.sign(data, config["HOTNET_DKIM_SELECTOR"].encode(),
                       config["HOTNET_DKIM_DOMAIN"].encode(),
                       _private_key(config["HOTNET_DKIM_KEY_FILE"]),
                       include_headers=[h for h in SIGNED_HEADERS
                                        if re.search(b"^" + h + b":", data, re.I | re.M)])
    return header + data


def make_key(key_file: str, selector: str, domain: str) -> str:
    """Write a new 2048-bit RSA key (mode 600) and return the DNS TXT record to publish."""
    from dkim import dknewkey

    path = Path(key_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    dknewkey.GenRSAKeys(str(path), verbose=False)
    path.chmod(0o600)
    public_file = path.with_suffix(".dns")
    dknewkey.ExtractRSADnsPublicKey(str(path), str(public_file), verbose=False)
    record = public_file.read_text().strip()
    public_file.unlink()
    return f'{selector}._domainkey.{domain}. IN TXT ( "{record}" )'
