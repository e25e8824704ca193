"""Demo data: the geography, staff, and about 460 supporters with realistic Japanese names."""
from __future__ import annotations

import random
from datetime import date, timedelta

from faker import Faker
from flask import current_app
from sqlalchemy import func, select

from app.accounts.models import StaffUser
from app.concerns import services as concerns
from app.concerns.rules import CLOSED_STATUSES
from app.extensions import db
from app.geography.models import Area, District, Station
from app.geography.services import load_geography
from app.supporters import services as supporters
from app.supporters.models import BusinessCategory, Supporter, SupporterChange
from app.text import is_kana, to_hiragana

DEMO_PASSWORD = "hotnet-demo-2026"
ADMIN_EMAIL = "admin@hotnet.example.jp"
PERSONS = 420
BUSINESSES = 40
TOWNS = ("田無町", "南町", "北町", "芝久保町", "向台町", "谷戸町", "緑町", "西原町", "保谷町",
         "住吉町", "東町", "中町", "下保谷", "泉町", "栄町", "東伏見", "柳沢", "富士町", "新町")
# Places as a reporter describes them (no town names: the district says where).
PLACES = ("公園の近く", "駅への道の途中", "集会所の裏", "商店街の角", "団地の3号棟", "バス停の前",
          "小学校の向かい", "神社のそば", "")
BUSINESS_WORDS = {
    "real_estate": ("不動産", "ふどうさん"),
    "cleanup": ("クリーンサービス", "くりーんさーびす"),
    "gardening": ("造園", "ぞうえん"),
    "shop": ("商店", "しょうてん"),
    "care": ("ケアサービス", "けあさーびす"),
    "other": ("工務店", "こうむてん"),
}


def _staff(email: str, name: str, kana: str, role: str, station_id=None, areas=()) -> None:
    if db.session.scalar(select(StaffUser).where(StaffUser.email == email)):
        return
    user = StaffUser(email=email, name=name, kana=kana, role=role, station_id=station_id)
    user.set_password(DEMO_PASSWORD)
    user.areas = list(areas)
    db.session.add(user)


def _person(fake: Faker) -> tuple[str, str]:
    while True:
        last, first = fake.last_name_pair(), fake.first_name_pair()
        name, kana = f"{last[0]} {first[0]}", f"{last[1]} {first[1]}"
        if is_kana(kana):
            return name, kana


def seed_demo() -> dict:
    """Load the demo; running it again changes nothing (idempotent)."""
    load_geography(current_app.config["HOTNET_GEOGRAPHY"])
    supporters.ensure_business_categories()
    fake = Faker("ja_JP")
    Faker.seed(20261126)
    rng = random.Random(20261126)

    _staff(ADMIN_EMAIL, "事務局 管理者", "じむきょく かんりしゃ", "admin")
    areas = list(db.session.scalars(select(Area).order_by(Area.position)))
    for n, area in enumerate(areas):
        for k in range(2):
            name, kana = _person(fake)
            _staff(f"coordinator{2 * n + k + 1}@hotnet.example.jp", name, kana, "coordinator",
                   area.station_id, [area])
    db.session.commit()

    concerns.ensure_concern_categories()
    if db.session.scalar(select(func.count(Supporter.id))) >= PERSONS:
        return {"created": 0}
    districts = list(db.session.scalars(select(District)))
    categories = {c.code: c for c in db.session.scalars(select(BusinessCategory))}
    created = 0
    for i in range(PERSONS + BUSINESSES):
        is_business = i >= PERSONS
        status = rng.choices(["active", "applied", "paused"], [88, 6, 6])[0]
        delivery = rng.choices(["email", "post", "both", "none"], [45, 35, 15, 5])[0]
        with_email = delivery in ("email", "both") or rng.random() < 0.2
        name, kana = _person(fake)
        record = Supporter(
            kind="business" if is_business else "person",
            name=name, kana=kana,
            email=f"demo{i + 1:04d}@example.jp" if with_email else None,
            phone=f"042-{rng.randint(400, 499)}-{rng.randint(0, 9999):04d}",
            postal_code=f"{rng.choice(['188', '202'])}00{rng.randint(0, 99):02d}",  # as stored: 7 digits
            address=f"西東京市{rng.choice(TOWNS)}{rng.randint(1, 6)}-{rng.randint(1, 30)}-{rng.randint(1, 20)}",
            district_id=rng.choice(districts).id,
            delivery=delivery, status=status,
            joined_via=rng.choices(["application", "staff", "former_consultee"], [60, 30, 10])[0],
            joined_on=None if status == "applied" else date(2015, 4, 1) + timedelta(days=rng.randint(0, 4000)),
        )
        if not is_business and status != "applied":
            record.registration_training_on = record.joined_on
        if is_business:
            code = rng.choice(list(BUSINESS_WORDS))
            word, word_kana = BUSINESS_WORDS[code]
            last = fake.last_name_pair()
            record.business_name = f"{last[0]}{word}"
            record.business_kana = f"{to_hiragana(last[1])}{word_kana}"
            record.business_category_id = categories[code].id
            record.contact_person, record.kana = record.name, record.kana
        db.session.add(record)
        db.session.flush()
        db.session.add(SupporterChange(supporter_id=record.id, actor="", actor_kind="system",
                                       action="created",
                                       changes={}))
        created += 1
    db.session.commit()
    _partners()
    _concerns(rng)
    _trainings(rng)
    return {"created": created}


def _trainings(rng: random.Random) -> None:
    """A registration training and a communication training, with sign-ups (one session full)."""
    from datetime import datetime, time

    from app.formatting import TOKYO, today_tokyo
    from app.geography.models import Station
    from app.trainings.models import Registration, Training, TrainingSession

    if db.session.scalar(select(func.count(Training.id))):
        return
    stations = list(db.session.scalars(select(Station).order_by(Station.position)))
    today = today_tokyo()

    def at(day, hour):
        return datetime.combine(day, time(hour), tzinfo=TOKYO)

    plans = [
        ("登録研修（令和8年度 冬）", "registration",
         "推進員として活動を始める方のための研修です。ほっとネットの仕組みと、気づいたことの伝え方を学びます。",
         [(12, 10, stations[0], 30), (26, 14, stations[-1], 30)]),
        ("コミュニケーション研修「聴くこと・つなぐこと」", "communication",
         "ご近所の方の話に耳を傾け、必要な窓口につなぐための研修です。",
         [(9, 13, stations[-1], 12), (40, 10, stations[0], 40)]),
    ]
    people = list(db.session.scalars(select(Supporter).where(Supporter.status == "active")
                                     .order_by(Supporter.id).limit(60)))
    for title, kind, description, sessions in plans:
        training = Training(title=title, kind=kind, description=description, published=True)
        db.session.add(training)
        db.session.flush()
        for days, hour, station, capacity in sessions:
            day = today + timedelta(days=days)
            session = TrainingSession(
                training_id=training.id, starts_at=at(day, hour), ends_at=at(day, hour + 2),
                station_id=station.id, capacity=capacity, confirmed=0,
                signup_deadline=at(day - timedelta(days=2), 23),
                cancel_deadline=at(day - timedelta(days=1), 23))
            db.session.add(session)
            db.session.flush()
            for person in rng.sample(people, min(len(people), capacity + 3 if capacity < 20 else 8)):
                confirmed = session.confirmed < session.capacity
                db.session.add(Registration(
                    session_id=session.id, supporter_id=person.id,
                    status="confirmed" if confirmed else "waitlisted",
                    confirmed_at=at(today, 9) if confirmed else None, via="self"))
                session.confirmed += 1 if confirmed else 0
    db.session.commit()


CONCERN_TEXTS = {
    "watch": ["このところ、一人暮らしのおばあさんを見かけません。新聞がたまっています。",
              "夜になっても電気がつかないお宅があり、気になっています。"],
    "isolation": ["隣の方が最近だれとも話していないようで、心配です。"],
    "housing": ["お宅の庭にごみ袋が積み上がっていて、においがします。",
                "雨どいが壊れたままで、住んでいる方が困っていそうです。"],
    "living": ["買い物に行けず困っていると、近所の方から聞きました。"],
    "children": ["夜遅くまで子どもだけで公園にいることが多いようです。"],
    "elderly": ["道に迷っている高齢の方を何度か見かけました。"],
    "disability": ["車いすの方が段差で困っている場所があります。"],
    "community": ["空き家の草が伸びて、道をふさいでいます。"],
    "other": ["集会所の掲示板に気になる貼り紙がありました。"],
}


def _concerns(rng: random.Random, count: int = 320) -> None:
    """About 14 months of concerns in every state, so that the dashboard has something to show."""
    from app.concerns.intake import next_reference
    from app.concerns.models import Concern, ConcernCategory, ConcernEvent
    from app.dbtypes import utcnow
    from app.formatting import TOKYO

    if db.session.scalar(select(func.count(Concern.id))):
        return
    categories = list(db.session.scalars(select(ConcernCategory)))
    districts = list(db.session.scalars(select(District)))
    staff = {a.id: [] for a in db.session.scalars(select(Area))}
    for user in db.session.scalars(select(StaffUser).where(StaffUser.role == "coordinator")):
        for area in user.areas:
            staff[area.id].append(user)
    from app.concerns.models import Referral
    from app.partners.models import Agency
    centres = {}
    for agency in db.session.scalars(select(Agency).where(Agency.kind == "houkatsu")):
        for area in agency.areas:
            centres[area.id] = agency
    now = utcnow()
    for i in sorted(rng.uniform(0, 420) for _ in range(count))[::-1]:
        created = now - timedelta(days=i, hours=rng.randint(0, 12))
        category = rng.choice(categories)
        district = rng.choice(districts)
        age = (now - created).days
        if age < 3:
            status = rng.choice(["received", "received", "acknowledged"])
        elif age < 30:
            status = rng.choice(["acknowledged", "in_progress", "connected", "closed"])
        else:
            status = rng.choices(["closed", "connected", "duplicate"], [80, 15, 5])[0]
        local = created.astimezone(TOKYO)
        concern = Concern(
            reference=next_reference(local.year), category_id=category.id,
            body=rng.choice(CONCERN_TEXTS.get(category.code, CONCERN_TEXTS["other"])),
            district_id=district.id, area_id=district.area_id, place=rng.choice(PLACES),
            urgency=rng.choices(["normal", "soon", "urgent"], [80, 15, 5])[0],
            channel=rng.choice(["web", "web", "phone", "visit", "counter"]), status=status,
            may_contact=False, created_at=created, month=f"{local:%Y-%m}",
            connected_to=(centres[district.area_id].name if status == "connected"
                          and centres.get(district.area_id) else ""),
            acknowledged_at=None if status == "received" else created + timedelta(days=1),
            closed_at=created + timedelta(days=10) if status in CLOSED_STATUSES else None,
        )
        if status != "received" and staff.get(district.area_id):
            concern.assignee_id = rng.choice(staff[district.area_id]).id
        db.session.add(concern)
        db.session.flush()
        db.session.add(ConcernEvent(concern_id=concern.id, kind="created", at=created,
                                    actor="", actor_kind="system", status_to="received",
                                    body=concern.channel))
        if status != "received":
            db.session.add(ConcernEvent(concern_id=concern.id, kind="status", actor="",
                                        actor_kind="system",
                                        at=created + timedelta(days=1),
                                        status_from="received", status_to=status))
        if status == "connected" and centres.get(district.area_id):
            # Passed on to the area's 地域包括支援センター, to be followed up a week later.
            day = (created + timedelta(days=1)).astimezone(TOKYO).date()
            db.session.add(Referral(
                concern_id=concern.id, agency_id=centres[district.area_id].id, referred_on=day,
                method="phone", consent="consent", staff_name="",
                passed_on="ご本人の了解を得て、訪問をお願いしました。", status="accepted",
                accepted_on=day + timedelta(days=1), follow_up_on=day + timedelta(days=7)))
            db.session.add(ConcernEvent(concern_id=concern.id, kind="referral", actor="",
                                        actor_kind="system", at=created + timedelta(days=1),
                                        status_to="requested",
                                        body=centres[district.area_id].name))
            db.session.add(ConcernEvent(concern_id=concern.id, kind="referral", actor="",
                                        actor_kind="system", at=created + timedelta(days=2),
                                        status_from="requested", status_to="accepted",
                                        body=centres[district.area_id].name))
    db.session.commit()


# A fictional directory of partner agencies for the four areas (names marked 例, numbers in
# the unused 042-000 range): one 地域包括支援センター and one 民生委員 contact per area, the
# town-wide counters, and two 障害者相談支援 offices by station.
PARTNERS_PER_AREA = (
    ("houkatsu", "地域包括支援センター {area}（例）", "ちいきほうかつしえんせんたー {kana}",
     ("watch", "elderly", "isolation"), "平日 8:30〜17:15"),
    ("minsei", "{area}民生委員・児童委員協議会（例）", "{kana}みんせいいいん", (), "会長・地区担当へ電話"),
)
PARTNERS_TOWN = (
    ("life_support", "生活サポート相談窓口（例）", "せいかつさぽーとそうだんまどぐち",
     ("living", "housing", "isolation"), "平日 9:00〜17:00"),
    ("children", "子ども家庭支援センター（例）", "こどもかていしえんせんたー", ("children",),
     "月〜土 9:00〜18:00"),
    ("health_center", "多摩地域保健所 西東京担当（例）", "たまちいきほけんじょ", (), "平日 8:30〜17:15"),
    ("medical", "南町ひだまり診療所（例）", "みなみちょうひだまりしんりょうじょ", ("elderly",),
     "月〜金 9:00〜12:00・15:00〜18:00"),
    ("police_fire", "警察署 生活安全課（例）", "けいさつしょ せいかつあんぜんか", ("community",),
     "緊急は110番・119番"),
)


def _partners() -> None:
    from app.partners.models import Agency
    from app.partners.services import save_agency

    if db.session.scalar(select(func.count(Agency.id))):
        return
    n = 0
    areas = list(db.session.scalars(select(Area).order_by(Area.position)))
    kana = {"chubu": "ちゅうぶ", "nanbu": "なんぶ", "hokutobu": "ほくとうぶ", "seibu": "せいぶ"}
    for area in areas:
        for kind, name, reading, codes, hours in PARTNERS_PER_AREA:
            n += 1
            save_agency(None, {
                "kind": kind, "name": name.format(area=area.name),
                "kana": reading.format(kana=kana.get(area.code, "")),
                "phone": f"042-000-{1000 + n:04d}", "fax": f"042-000-{2000 + n:04d}",
                "hours": hours, "area_ids": [area.id], "category_codes": list(codes),
                "address": f"西東京市{area.name.replace('圏域', '')}1-{n}（例）"}, actor=None)
    for station in db.session.scalars(select(Station).order_by(Station.position)):
        n += 1
        save_agency(None, {
            "kind": "disability", "name": f"障害者相談支援事業所 {station.name}（例）",
            "kana": "しょうがいしゃそうだんしえん", "phone": f"042-000-{1000 + n:04d}",
            "fax": f"042-000-{2000 + n:04d}", "hours": "平日 9:00〜17:00",
            "area_ids": [a.id for a in station.areas], "category_codes": ["disability"]},
            actor=None)
    for kind, name, reading, codes, hours in PARTNERS_TOWN:
        n += 1
        save_agency(None, {"kind": kind, "name": name, "kana": reading, "hours": hours,
                           "phone": f"042-000-{1000 + n:04d}", "fax": f"042-000-{2000 + n:04d}",
                           "category_codes": list(codes)}, actor=None)
