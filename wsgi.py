"""Entry point for gunicorn: `gunicorn wsgi:app`."""
import gc

from app import create_app

app = create_app()
# Everything loaded so far lives as long as the process: keep it out of the garbage
# collector's way (fewer and shorter collection pauses per request).
gc.freeze()
