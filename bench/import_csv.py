"""The registry import at speed (issue 16, part 4).

N supporter rows with realistic Japanese names, encoded in CP932 as Excel in Japan saves
them, go through the import as staff use it: the upload and dry run (`csvio.stage`), then the
commit (`csvio.commit_import`). The same rows are also written with a bare `executemany`
INSERT into the same kind of database, as the baseline. Target (issue 16): import at 0.3 of
the bare insert's rate or better, and memory flat from 10k to 100k rows.

    python -m bench.import_csv [--sizes 10000,100000] [--database sqlite|postgresql]

Each import runs in a process of its own, reading the file from disk as an upload is read;
its memory is the growth of its own resident memory (RssAnon) while it runs, sampled every
5 ms.

Last line: key=value figures — ratio (import rows/s ÷ bare rows/s at the first size),
rss_ratio (peak memory growth at the largest size ÷ at the first size), the rates (at the
first size the best of three runs each, of the import and of the bare insert alike), and
floor_ratio: the same bare INSERT together with the rows each supporter brings (its search
terms and history entry) ÷ the bare rate — on SQLite, what no import that writes them can
beat; on PostgreSQL the import writes with COPY, which is faster than executemany, and can
pass it. With PostgreSQL answering, the same figures follow with pg_ in front.
"""
from __future__ import annotations

import argparse
import csv
import gc
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

from faker.providers.person.ja_JP import Provider as NameProvider


def names(count: int, seed: int = 20261127) -> list[tuple[str, str]]:
    """(name, reading) pairs from Faker's Japanese family and given names."""
    rng = random.Random(seed)
    last = [(n[0], n[1]) for n in NameProvider.last_name_pairs]
    first = [(n[0], n[1]) for n in NameProvider.first_name_female_pairs +
             NameProvider.first_name_male_pairs]
    out = []
    for _ in range(count):
        (l_kanji, l_kana), (f_kanji, f_kana) = rng.choice(last), rng.choice(first)
        out.append((f"{l_kanji} {f_kanji}", f"{l_kana} {f_kana}"))
    return out


def write_csv(path: str, rows: list[tuple[str, str]], districts: list[str]) -> None:
    """The rows as Excel in Japan saves them (CP932, CRLF), written a line at a time."""
    with open(path, "w", encoding="cp932", errors="replace", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["氏名", "ふりがな", "電話番号", "郵便番号", "住所", "地区", "通信の受け取り方"])
        for n, (name, kana) in enumerate(rows):
            writer.writerow([name, kana, f"042-{400 + n // 10000:03d}-{n % 10000:04d}",
                             "188-0012", f"西東京市南町{n % 6 + 1}-{n % 30 + 1}-{n % 20 + 1}",
                             districts[n % len(districts)], "郵送"])


def rss_mb() -> float:
    """The process's own resident memory (RssAnon): not the pages of the database file that
    SQLite maps (PRAGMA mmap_size), which are the system's file cache, shared and given back."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


class PeakRss(threading.Thread):
    """The highest resident memory while running, sampled every 5 ms (ru_maxrss would keep
    the peak of starting up, which is higher than an import of a flat size)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.start_mb = self.peak_mb = rss_mb()
        self.running = True

    def run(self) -> None:
        while self.running:
            self.peak_mb = max(self.peak_mb, rss_mb())
            time.sleep(0.005)

    def stop(self) -> float:
        """The growth over the start, in MB."""
        self.running = False
        self.join()
        return max(self.peak_mb, rss_mb()) - self.start_mb


def fresh_app(url: str):
    from flask_migrate import upgrade

    from app import create_app
    from app.geography.services import load_geography
    from app.supporters.services import ensure_business_categories
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                      "RATELIMIT_ENABLED": False})
    with app.app_context():
        upgrade()
        load_geography(app.config["HOTNET_GEOGRAPHY"])
        ensure_business_categories()
    return app


def database(kind: str, folder: str, name: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{folder}/{name}.sqlite3"
    import psycopg
    server = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    db_name = f"hotnet_bench_{name}_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}"')
        conn.execute(f'CREATE DATABASE "{db_name}"')
    return "postgresql+psycopg://" + server.split("://", 1)[1].rsplit("/", 1)[0] + "/" + db_name


def forget(url: str) -> None:
    """Drop a database made by `database` (the next run of the same name starts empty)."""
    if url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(url.split("///", 1)[1] + suffix):
                os.remove(url.split("///", 1)[1] + suffix)
    else:
        import psycopg
        server = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def run_import(kind: str, folder: str, size: int) -> tuple[float, float]:
    """Rows per second through stage + commit, and the peak RSS growth in MB, measured in a
    process of its own that reads the file from disk as the upload would be (so that making
    the file does not hide what the import holds)."""
    out = subprocess.run([sys.executable, "-m", "bench.import_csv", "--child", kind, folder,
                          str(size)], capture_output=True, text=True, env=os.environ)
    if out.returncode:
        raise SystemExit(out.stdout + out.stderr)
    rate, rss = out.stdout.strip().splitlines()[-1].split()
    return float(rate), float(rss)


def child(kind: str, folder: str, size: int) -> None:
    from sqlalchemy import func, select

    from app.extensions import db
    from app.geography.models import District
    from app.supporters import csvio
    from app.supporters.models import Supporter

    url = database(kind, folder, f"import{size}")
    app = fresh_app(url)
    with app.app_context():
        path = os.path.join(folder, f"import{size}.csv")
        districts = [d.name for d in db.session.scalars(select(District))]
        if (pid := os.fork()) == 0:  # made by another process: its memory is not counted
            write_csv(path, names(size), districts)
            os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        gc.collect()
        peak = PeakRss()
        peak.start()
        started = time.perf_counter()
        with open(path, "rb") as upload:
            pending = csvio.stage(upload, "bench.csv", None)
        assert pending.summary["ok"] == size, pending.summary
        count = csvio.commit_import(pending, actor=None)
        elapsed = time.perf_counter() - started
        growth = peak.stop()
        assert count == size == db.session.scalar(select(func.count(Supporter.id)))
        db.session.remove()
        db.engine.dispose()
    forget(url)
    print(f"{size / elapsed} {growth}")


def run_bare(kind: str, folder: str, size: int, derived: bool = False) -> float:
    """Rows per second for the same rows by a bare executemany INSERT (no checks, no keys).
    With `derived`, also what every supporter brings with it — its search terms (about twelve
    for a name and its reading, in the database's search index) and first history entry, made
    before the clock starts: the floor of any import. (The search index is the schema's: an
    empty row, as the bare INSERT writes, is indexed too, as nothing.)"""
    from types import SimpleNamespace

    from sqlalchemy import insert, select

    from app.extensions import db
    from app.geography.models import District
    from app.supporters.models import Supporter, SupporterChange
    from app.supporters.search import search_text_for

    url = database(kind, folder, f"bare{size}{'d' if derived else ''}")
    app = fresh_app(url)
    with app.app_context():
        district_ids = list(db.session.scalars(select(District.id)))
        rows = [{"kind": "person", "name": name, "kana": kana, "phone": f"042-400-{n % 10000:04d}",
                 "postal_code": "1880012", "address": "西東京市南町1-1-1",
                 "district_id": district_ids[n % len(district_ids)], "delivery": "post",
                 "status": "active", "joined_via": "import", "sort_key": kana}
                for n, (name, kana) in enumerate(names(size))]
        if derived:
            for row in rows:
                row["search_terms"] = search_text_for(SimpleNamespace(
                    business_name="", business_kana="", contact_person="", email=None, **row))
        history = [{"supporter_id": n, "actor": "", "actor_kind": "system", "action": "imported",
                    "changes": {}} for n in range(1, size + 1)]
        started = time.perf_counter()
        with db.engine.begin() as conn:
            conn.execute(insert(Supporter.__table__), rows)
            if derived:  # a fresh database: the supporters are 1 … size
                conn.execute(insert(SupporterChange.__table__), history)
        elapsed = time.perf_counter() - started
        db.engine.dispose()
    forget(url)
    return size / elapsed


def measure(kind: str, sizes: list[int], repeat: int = 3
            ) -> tuple[float, float, float, float, float]:
    """(ratio, rss_ratio, import rows/s at the first size, bare rows/s, floor ratio) on one
    database. The rates at the first size are the best of `repeat` runs each, the bare
    insert's as the import's: one run of either moves by a third from run to run on a shared
    machine, and the best is the least disturbed."""
    def best(runs: list[float]) -> str:
        return f"best of {', '.join(f'{r:,.0f}' for r in runs)}"

    with tempfile.TemporaryDirectory(prefix="hotnet-import-bench-") as folder:
        os.environ["HOTNET_INSTANCE_PATH"] = folder
        runs = [run_bare(kind, folder, sizes[0]) for _ in range(repeat)]
        bare = max(runs)
        print(f"{kind}: bare executemany INSERT of {sizes[0]} rows: {bare:,.0f} rows/s "
              f"({best(runs)})", flush=True)
        runs = [run_bare(kind, folder, sizes[0], derived=True) for _ in range(repeat)]
        floor = max(runs)
        print(f"{kind}: the same with each row's search terms and history entry: {floor:,.0f} "
              f"rows/s ({floor / bare:.2f} of the bare rate"
              + (": the best any import writing them could reach)" if kind == "sqlite" else
                 "; the import writes with COPY, faster than executemany, and can pass it)"),
              flush=True)
        results = {}
        for n, size in enumerate(sizes):
            # (memory: the first run of each size; the rate counts at the first size only)
            runs, rss = zip(*(run_import(kind, folder, size)
                              for _ in range(repeat if n == 0 else 1)), strict=True)
            results[size] = (max(runs), rss[0])
            print(f"{kind}: import (dry run + commit) of {size} CP932 rows: "
                  f"{max(runs):,.0f} rows/s ({best(runs)}), peak memory (RssAnon) "
                  f"+{rss[0]:.1f} MB", flush=True)
    first, last = sizes[0], sizes[-1]
    ratio = results[first][0] / bare
    rss_ratio = (results[last][1] or 1) / (results[first][1] or 1)
    flat = rss_ratio <= 1.3
    print(f"{kind}: targets: ratio >= 0.3 {'met' if ratio >= 0.3 else 'NOT met'} ({ratio:.3f}); "
          f"memory flat from {first} to {last} rows {'met' if flat else 'NOT met'} "
          f"(peak memory growth x{rss_ratio:.2f})", flush=True)
    return ratio, rss_ratio, results[first][0], bare, floor / bare


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--database", choices=["sqlite", "postgresql"],
                        help="one database only (default: SQLite, and PostgreSQL if it answers)")
    args, _rest = parser.parse_known_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    os.environ.setdefault("HOTNET_ENV", "development")
    from bench.common import postgres_reachable
    kinds = [args.database] if args.database else (
        ["sqlite", "postgresql"] if postgres_reachable() else ["sqlite"])
    figures = []
    for kind in kinds:
        ratio, rss_ratio, rate, bare, floor = measure(kind, sizes)
        prefix = "pg_" if kind == "postgresql" and len(kinds) > 1 else ""
        figures += [f"{prefix}ratio={ratio:.3f}", f"{prefix}rss_ratio={rss_ratio:.2f}",
                    f"{prefix}import_rows_per_s={rate:.0f}", f"{prefix}bare_rows_per_s={bare:.0f}",
                    f"{prefix}floor_ratio={floor:.2f}"]
    print(" ".join(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
