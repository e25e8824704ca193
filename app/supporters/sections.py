"""Parts of a supporter's pages that the domains above supporters contribute.

The "me" page and the staff page of a supporter are the supporters domain's, but what a
supporter did in trainings (or, later, in referrals) belongs to those domains. Each of them
registers a section here -- a template and a function that loads its data -- and the page
renders the registered sections in order, so supporters never imports the domains above it
(docs/architecture.md)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from app.supporters.models import Supporter


@dataclass(frozen=True)
class Section:
    template: str  # rendered with `section` (the loaded data) and `supporter`
    load: Callable[[Supporter], Any]
    order: int = 50


ME: list[Section] = []      # the supporter's own page (/me)
STAFF: list[Section] = []   # the staff page of a supporter


def register(page: list[Section], template: str, order: int = 50):
    """Decorator for a loader: `@register(sections.ME, "trainings/_me_section.html")`."""
    def decorator(load: Callable[[Supporter], Any]):
        page.append(Section(template, load, order))
        page.sort(key=lambda s: s.order)
        return load
    return decorator


def compose(page: list[Section], supporter: Supporter) -> list[tuple[str, Any]]:
    """(template, data) for each registered section, in order."""
    return [(s.template, s.load(supporter)) for s in page]
