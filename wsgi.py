"""Entry point for gunicorn: `gunicorn wsgi:app`."""
import gc
import sys

from app import create_app
from app.config import ConfigError
from app.secret import SecretKeyError

try:
    app = create_app()
except (SecretKeyError, ConfigError) as exc:  # say what to set, without a traceback
    print(f"Hot-Net: {exc}", file=sys.stderr)
    raise SystemExit(2) from None
# Everything loaded so far lives as long as the process: keep it out of the garbage
# collector's way (fewer and shorter collection pauses per request).
gc.freeze()
