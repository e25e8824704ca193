"""Benchmark: the staff search page at 1,000 and 100,000 supporters.

Fills a fresh database with realistic supporters (a long-tailed mix of Japanese family
names), signs in as staff and times the search page over varied queries (kanji, hiragana,
katakana, half-width kana, phone numbers, e-mail, business names) beside /healthz and a
signed-in page with no data of its own (the privacy page, what every page costs: sign-in,
session, layout) in the same run, through the whole application (routing, sign-in, query,
template).

Prints p50/p95 per size of /healthz, the static page and the search page, and:
- static_ratio = static p95 / healthz p95 (the fixed cost of a page; target <= 2.5),
- search_ratio = search p95 / static p95 at the largest size (the search's own cost;
  target <= 1.5),
- growth_p95 = search p95 at the largest size / at the smallest (target <= 2),
- ratio_p95 = search p95 / healthz p95 (earlier target <= 5),
on SQLite and (pg_ keys) PostgreSQL when it is reachable. The last line holds the figures.
"""
from __future__ import annotations

import argparse
import gc
import os
import random
import re
import statistics
import sys
import tempfile
import time
import unicodedata

from faker.providers.person.ja_JP import Provider as NameProvider
from sqlalchemy import insert, select, text

from app import create_app
from app.config import database_url
from app.extensions import db
from app.geography.models import District
from app.geography.services import load_geography
from app.supporters.models import Supporter
from app.supporters.search import search_text_for
from app.supporters.services import ensure_business_categories, sort_key_for
from bench.common import PG_URL, create_database, drop_database, postgres_reachable

PREFIXES = [("山", "やま"), ("川", "かわ"), ("石", "いし"), ("松", "まつ"), ("竹", "たけ"), ("森", "もり"),
            ("林", "はやし"), ("小", "こ"), ("大", "おお"), ("中", "なか"), ("上", "うえ"), ("下", "しも"),
            ("北", "きた"), ("南", "みなみ"), ("西", "にし"), ("東", "ひがし"), ("高", "たか"), ("長", "なが"),
            ("平", "ひら"), ("岡", "おか"), ("藤", "ふじ"), ("吉", "よし"), ("桜", "さくら"), ("梅", "うめ"),
            ("宮", "みや"), ("村", "むら"), ("浅", "あさ"), ("金", "かね"), ("黒", "くろ"), ("白", "しら"),
            ("青", "あお"), ("赤", "あか"), ("菊", "きく"), ("柴", "しば"), ("秋", "あき"), ("春", "はる"),
            ("原", "はら"), ("井", "い"), ("芦", "あし"), ("荒", "あら")]
SUFFIXES = [("田", "た"), ("川", "かわ"), ("山", "やま"), ("野", "の"), ("村", "むら"), ("本", "もと"),
            ("井", "い"), ("島", "しま"), ("沢", "さわ"), ("原", "はら"), ("木", "き"), ("谷", "たに"),
            ("口", "ぐち"), ("崎", "さき"), ("尾", "お"), ("部", "べ"), ("橋", "はし"), ("内", "うち"),
            ("池", "いけ"), ("岡", "おか"), ("森", "もり"), ("瀬", "せ"), ("浦", "うら"), ("坂", "さか"),
            ("永", "なが"), ("塚", "つか"), ("江", "え"), ("倉", "くら"), ("畑", "はた"), ("戸", "と")]
BUSINESS = [("不動産", "ふどうさん"), ("クリーン", "くりーん"), ("造園", "ぞうえん"), ("商店", "しょうてん"),
            ("ケア", "けあ"), ("工務店", "こうむてん")]


def name_pool(rng: random.Random):
    """About 1,250 family names: Faker's 50 common ones carry a quarter of the weight."""
    common = list(NameProvider.last_name_pairs)
    rare = [(a + b, ar + br) for a, ar in PREFIXES for b, br in SUFFIXES]
    names = [(n[0], n[1]) for n in common] + rare
    weights = [0.25 / len(common)] * len(common) + [0.75 / len(rare)] * len(rare)
    given = [(n[0], n[1]) for n in NameProvider.first_name_female_pairs +
             NameProvider.first_name_male_pairs]
    return names, weights, given


def fill(url: str, size: int, seed: int = 7) -> list[dict]:
    """Insert `size` supporters with their search terms (indexed by the database as the
    application's are); returns the rows (for queries)."""
    rng = random.Random(seed)
    names, weights, given = name_pool(rng)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    rows = []
    with app.app_context():
        db.create_all()
        load_geography(app.config["HOTNET_GEOGRAPHY"])
        ensure_business_categories()
        districts = list(db.session.scalars(select(District.id)))
        family = rng.choices(names, weights, k=size)
        for i in range(size):
            last, first = family[i], rng.choice(given)
            business = i % 12 == 0
            s = Supporter(
                kind="business" if business else "person",
                name=f"{last[0]} {first[0]}", kana=f"{last[1]} {first[1]}",
                business_name=f"{last[0]}{BUSINESS[i % 6][0]}" if business else "",
                business_kana=f"{last[1]}{BUSINESS[i % 6][1]}" if business else "",
                email=f"user{i:06d}@example.jp" if i % 3 else None,
                phone=f"042-{400 + i // 10000:03d}-{i % 10000:04d}",
                district_id=rng.choice(districts), delivery="post", status="active",
                joined_via="staff", postal_code="188-0012", address="西東京市南町1-1-1",
            )
            row = {c: getattr(s, c) for c in ("kind", "name", "kana", "business_name",
                                               "business_kana", "email", "phone", "district_id",
                                               "delivery", "status", "joined_via", "postal_code",
                                               "address")}
            row.update(id=i + 1, sort_key=sort_key_for(s),
                       email_key=s.email.lower() if s.email else None, notes="",
                       contact_person="", consent_version="")
            row["search_terms"] = search_text_for(s)
            rows.append(row)
        now = time.time()
        from app.dbtypes import utcnow
        stamp = utcnow()
        for start in range(0, size, 5000):
            chunk = rows[start:start + 5000]
            db.session.execute(insert(Supporter), [
                r | {"created_at": stamp, "updated_at": stamp} for r in chunk])
            db.session.commit()
        db.session.commit()
        # Settled, as autovacuum leaves a database (on PostgreSQL: the search index's pending
        # entries filed, which VACUUM does).
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE" if conn.dialect.name == "postgresql" else "ANALYZE"))
        db.engine.dispose()
        print(f"  filled {size:,} supporters in {time.time() - now:.1f}s", flush=True)
    return rows


def to_halfwidth_katakana(hiragana: str) -> str:
    """ヤマダ as old systems store it: ﾔﾏﾀﾞ (voiced marks as separate half-width signs)."""
    kata = "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in hiragana)
    out = []
    for ch in unicodedata.normalize("NFD", kata):
        if ch == "\u3099":
            out.append("ﾞ")
        elif ch == "\u309a":
            out.append("ﾟ")
        else:
            out.append(HALF.get(ch, ch))
    return "".join(out)


FULL = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンァィゥェォャュョッー"
HALFW = "ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜｦﾝｧｨｩｪｫｬｭｮｯｰ"
HALF = dict(zip(FULL, HALFW, strict=True))


def queries(rows: list[dict], count: int, seed: int = 11) -> list[str]:
    """Varied queries as staff type them, drawn from the stored supporters."""
    rng = random.Random(seed)
    out = []
    kinds = ["family", "full", "kana", "katakana", "halfwidth", "phone", "last4", "email",
             "business"]
    while len(out) < count:
        r = rng.choice(rows)
        kind = kinds[len(out) % len(kinds)]
        family, _, given = r["name"].partition(" ")
        kana_family = r["kana"].split(" ")[0]
        if kind == "family":
            q = family
        elif kind == "full":
            q = r["name"].replace(" ", "")
        elif kind == "kana":
            q = kana_family
        elif kind == "katakana":
            q = "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in r["kana"])
        elif kind == "halfwidth":
            q = to_halfwidth_katakana(r["kana"].replace(" ", ""))
        elif kind == "phone":
            q = r["phone"]
        elif kind == "last4":
            q = r["phone"][-4:]
        elif kind == "email":
            if not r["email"]:
                continue
            q = r["email"].split("@")[0]
        else:
            if not r["business_name"]:
                continue
            q = r["business_name"]
        out.append(q)
    return out


STATIC_PAGE = "/privacy"  # signed in, no data of its own: the layout, session and sign-in


def timed(client, path: str, params=None) -> float:
    start = time.perf_counter()
    response = client.get(path, query_string=params)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, (path, params, response.status_code)
    return elapsed


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure(url: str, rows: list[dict], n_queries: int) -> dict:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "RATELIMIT_ENABLED": False,
                      "WTF_CSRF_ENABLED": False, "HOTNET_PASSWORD_METHOD": "pbkdf2:sha256:1000"})
    with app.app_context():
        from app.accounts.services import create_staff
        # A coordinator who covers every area: one with none would find nobody.
        create_staff("bench@example.jp", "計測 係", "bench-password-1", "coordinator",
                     all_areas=True, actor=None)
    client = app.test_client()
    response = client.post("/login", data={"email": "bench@example.jp",
                                           "password": "bench-password-1"})
    assert response.status_code == 302
    qs = queries(rows, n_queries)
    for q in qs[:20]:  # warm up: templates, caches, connections
        timed(client, "/staff/supporters", {"q": q})
        timed(client, "/healthz")
        timed(client, STATIC_PAGE)
    gc.collect()
    gc.freeze()  # as wsgi.py does once the application is loaded
    search, health, static, found = [], [], [], []
    for q in qs:
        health.append(timed(client, "/healthz"))
        static.append(timed(client, STATIC_PAGE))
        start = time.perf_counter()
        response = client.get("/staff/supporters", query_string={"q": q})
        search.append(time.perf_counter() - start)
        match = re.search(r"該当 (\d+) 件", response.get_data(as_text=True))
        found.append(int(match.group(1)))
    assert max(found) > 0, "the searches found nobody: the bench measures an empty page"
    with app.app_context():
        db.engine.dispose()
    return {
        "search_p50": pct(search, 50) * 1000, "search_p95": pct(search, 95) * 1000,
        "health_p50": pct(health, 50) * 1000, "health_p95": pct(health, 95) * 1000,
        "static_p50": pct(static, 50) * 1000, "static_p95": pct(static, 95) * 1000,
        "found_median": statistics.median(found), "found_max": max(found),
        "queries": len(qs),
    }


def run_backend(backend: str, sizes: list[int], n_queries: int) -> dict:
    results = {}
    for size in sizes:
        if backend == "sqlite":
            folder = tempfile.mkdtemp(prefix="hotnet-bench-")
            url = "sqlite:///" + os.path.join(folder, "bench.sqlite3")
            cleanup = None
        else:
            name = f"hotnet_bench_{os.getpid()}_{size}"
            url = database_url(create_database(name))

            def cleanup(name=name):
                drop_database(name)
        try:
            rows = fill(url, size)
            figures = measure(url, rows, n_queries)
        finally:
            if cleanup:
                cleanup()
        results[size] = figures
        print(f"  {backend} {size:>7,} supporters: healthz p50 {figures['health_p50']:.2f} ms, "
              f"p95 {figures['health_p95']:.2f} ms | static p50 {figures['static_p50']:.2f} ms, "
              f"p95 {figures['static_p95']:.2f} ms | search p50 {figures['search_p50']:.2f} ms, "
              f"p95 {figures['search_p95']:.2f} ms | {figures['queries']} queries, "
              f"median {figures['found_median']:.0f} hits, max {figures['found_max']}",
              flush=True)
    small, large = results[sizes[0]], results[sizes[-1]]
    ratio = large["search_p95"] / large["health_p95"]
    growth = large["search_p95"] / small["search_p95"]
    # The fixed cost of a page is the same at any size: the worst of the sizes counts.
    static_ratio = max(r["static_p95"] / r["health_p95"] for r in results.values())
    search_ratio = large["search_p95"] / large["static_p95"]
    print(f"  {backend}: static/healthz p95 = {static_ratio:.2f} (target <= 2.5), "
          f"search/static p95 at {sizes[-1]:,} = {search_ratio:.2f} (target <= 1.5), "
          f"growth p95 {sizes[-1]:,}/{sizes[0]:,} = {growth:.2f} (target <= 2), "
          f"search/healthz p95 = {ratio:.2f} (target <= 5)", flush=True)
    return {"static_ratio": static_ratio, "search_ratio": search_ratio, "growth_p95": growth,
            "ratio_p95": ratio}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--queries", type=int, default=240)
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    figures = {}
    for backend in args.db.split(","):
        if backend == "postgresql":
            if not postgres_reachable():
                print(f"  postgresql: not reachable at {PG_URL}; skipped")
                continue
        figures[backend] = run_backend(backend, sizes, args.queries)
    parts = []
    for backend, f in figures.items():
        prefix = "" if backend == "sqlite" else "pg_"
        parts.append(" ".join(f"{prefix}{key}={f[key]:.2f}" for key in
                              ("static_ratio", "search_ratio", "growth_p95", "ratio_p95")))
    print("registry_search db=" + "+".join(figures) + " " + " ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
