"""Every form that posts carries a CSRF token."""
import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def test_every_post_form_has_a_csrf_token():
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        for form in re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", text, re.S):
            assert "csrf_token" in form, f"{path.relative_to(TEMPLATES)} has a form without CSRF"
