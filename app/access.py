"""Who may open a page: decorators for views, below every domain (they only look at the
signed-in account's kind and role). The rules about *which records* an account may see are
the domains' own (accounts.services.area_scope)."""
from __future__ import annotations

from functools import wraps

from flask import abort, current_app, redirect, request, url_for
from flask_login import current_user


def _require(check, sign_in: str = ""):
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                if sign_in:  # supporters sign in by a mailed link, not with a password
                    return redirect(url_for(sign_in, next=request.full_path.rstrip("?")))
                return current_app.login_manager.unauthorized()
            if not check(current_user):
                abort(403)
            return view(*args, **kwargs)
        return wrapped
    return decorator


staff_required = _require(lambda user: user.is_staff)
admin_required = _require(lambda user: user.is_staff and user.is_admin)
supporter_required = _require(lambda user: user.is_supporter, sign_in="supporters.request_link")
