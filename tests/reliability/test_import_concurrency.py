"""The import button pressed twice, two requests at the same instant: one imports, the other
finds the import taken (or, on SQLite, the database busy) and imports nothing."""
from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.supporters import csvio
from app.supporters.models import Supporter
from tests.reliability.test_training_concurrency import run_together

HEADER = "種別,氏名,ふりがな,メールアドレス,電話番号,郵便番号,住所,地区,通信の受け取り方,状態,登録日\r\n"
ROWS = 3000


def test_two_requests_to_import_the_same_file_import_it_once(app, geography, backend, admin):
    rows = "".join(f"個人,山田 {n},やまだ,p{n}@example.jp,042-111-{n:04d},,,田無小地区,メール,活動中,\r\n"
                   for n in range(ROWS))
    pending_id = csvio.stage((HEADER + rows).encode("utf-8"), "meibo.csv", admin.id).id
    admin_id = admin.id
    db.session.remove()
    outcomes = []

    def press():
        from app.accounts.models import StaffUser
        actor = db.session.get(StaffUser, admin_id)
        pending = csvio.get_pending(pending_id, actor=actor)
        outcomes.append(csvio.commit_import(pending, actor=actor))

    errors = run_together(app, [press, press])
    count = db.session.scalar(select(func.count(Supporter.id)))
    print(f"\n{backend}: imported {outcomes}, refused {[type(e).__name__ for e in errors]}, "
          f"{count} supporters")
    assert outcomes == [ROWS] and count == ROWS
    [refused] = errors  # taken by the other (NotFound) or, on SQLite, the write lock busy
    assert type(refused).__name__ in ("NotFound", "OperationalError"), refused
