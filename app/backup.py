"""Backup and restore: one archive holds everything needed to start again on a new disk.

    hotnet-20261127-020000.tar
      manifest.json      app version, Alembic revision, database kind, rows per table,
                         a SHA-256 of every other member
      database.dump      PostgreSQL: pg_dump's custom format, from one snapshot
      database.sqlite3   SQLite: a copy by SQLite's online backup API (safe while the app runs)
      geography.toml     the geography file in use
      uploads/…          every uploaded file (photos, newsletter pictures)

`restore` checks every checksum before it touches anything, loads the database into an
empty one and the files into an empty uploads folder, and migrates an older schema forward;
it refuses an archive made by a newer Hot-Net. The scheduler's nightly job keeps the newest
HOTNET_BACKUP_KEEP archives in HOTNET_BACKUP_DIR.

Above the domains (it reads every table), with the CLI and the scheduler.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import current_app
from sqlalchemy import create_engine, func, inspect, select, table, text
from sqlalchemy.engine import make_url

from app import __version__, heartbeat
from app.dbtypes import utcnow
from app.extensions import db
from app.formatting import TOKYO

FORMAT = 1


class BackupError(Exception):
    """Why an archive cannot be written or restored, in words for the person at the console."""


@dataclass
class BackupResult:
    path: Path
    bytes: int
    rows: int
    revision: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _libpq_url(url) -> str:
    """The URL for pg_dump / pg_restore (no SQLAlchemy driver name)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _counts(conn) -> dict[str, int]:
    names = sorted(inspect(conn).get_table_names())
    return {name: conn.execute(select(func.count()).select_from(table(name))).scalar_one()
            for name in names}


def _revision(conn) -> str:
    try:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar() or ""
    except Exception:  # noqa: BLE001 - a database that was never migrated
        return ""


def known_revisions() -> list[str]:
    """Every migration of this version of Hot-Net, oldest first."""
    from alembic.script import ScriptDirectory

    from app import ROOT
    script = ScriptDirectory(str(ROOT / "migrations"))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


# --- writing ------------------------------------------------------------------------------

def _dump_postgresql(url, folder: Path) -> tuple[dict[str, int], str, Path]:
    """pg_dump and the row counts from one exported snapshot, so they agree exactly."""
    out = folder / "database.dump"
    engine = create_engine(url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn:
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            counts, revision = _counts(conn), _revision(conn)
            done = subprocess.run(
                ["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
                 f"--snapshot={snapshot}", f"--file={out}", _libpq_url(url)],
                capture_output=True, text=True)
            conn.rollback()
    finally:
        engine.dispose()
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
    return counts, revision, out


def _dump_sqlite(url, folder: Path) -> tuple[dict[str, int], str, Path]:
    out = folder / "database.sqlite3"
    source = sqlite3.connect(url.database, timeout=30)
    target = sqlite3.connect(out)
    try:
        source.backup(target)  # a consistent copy, even while others write
    finally:
        source.close()
        target.close()
    engine = create_engine(f"sqlite:///{out}")
    try:
        with engine.connect() as conn:
            return _counts(conn), _revision(conn), out
    finally:
        engine.dispose()


def write_backup(destination: str | Path | None = None) -> BackupResult:
    """Write one archive; `destination` is a file or a folder (default HOTNET_BACKUP_DIR)."""
    config = current_app.config
    destination = Path(destination or config.get("HOTNET_BACKUP_DIR") or ".")
    stamp = utcnow().astimezone(TOKYO).strftime("%Y%m%d-%H%M%S")
    path = destination / f"hotnet-{stamp}.tar" if destination.is_dir() or not destination.suffix \
        else destination
    path.parent.mkdir(parents=True, exist_ok=True)
    url = make_url(config["SQLALCHEMY_DATABASE_URI"])
    with tempfile.TemporaryDirectory(prefix="hotnet-backup-") as work:
        folder = Path(work)
        if url.get_backend_name() == "postgresql":
            counts, revision, dump = _dump_postgresql(url, folder)
        elif url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            counts, revision, dump = _dump_sqlite(url, folder)
        else:
            raise BackupError(f"cannot back up a {url.get_backend_name()} database")
        members: list[tuple[str, Path]] = [(dump.name, dump)]
        geography = Path(config["HOTNET_GEOGRAPHY"])
        if geography.is_file():
            members.append(("geography.toml", geography))
        uploads = Path(config["HOTNET_UPLOAD_DIR"])
        if uploads.is_dir():
            for file in sorted(p for p in uploads.rglob("*") if p.is_file()):
                members.append((f"uploads/{file.relative_to(uploads).as_posix()}", file))
        manifest = {
            "format": FORMAT, "app_version": __version__, "alembic_revision": revision,
            "database": url.get_backend_name(), "created_at": utcnow().isoformat(),
            "tables": counts, "files": {name: _sha256(file) for name, file in members},
        }
        partial = path.with_name(path.name + ".partial")
        with tarfile.open(partial, "w") as archive:
            data = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime = len(data), int(utcnow().timestamp())
            archive.addfile(info, io.BytesIO(data))
            for name, file in members:
                archive.add(file, arcname=name, recursive=False)
        os.replace(partial, path)  # never a half-written archive under the final name
    return BackupResult(path, path.stat().st_size, sum(counts.values()), revision)


def prune(folder: Path, keep: int) -> list[Path]:
    """Remove all but the newest `keep` archives; returns what was removed."""
    archives = sorted(folder.glob("hotnet-*.tar"))
    removed = archives[:-keep] if keep > 0 else []
    for old in removed:
        old.unlink()
    return removed


def nightly_backup(now: datetime | None = None) -> BackupResult | None:
    """The scheduler's job: once a day from HOTNET_BACKUP_HOUR (Japan time), then prune."""
    config = current_app.config
    folder = config.get("HOTNET_BACKUP_DIR")
    if not folder:
        return None
    local = (now or utcnow()).astimezone(TOKYO)
    if local.hour < config["HOTNET_BACKUP_HOUR"]:
        return None
    last = heartbeat.last("backup")
    db.session.rollback()
    if last is not None and last.at is not None and not (last.detail or {}).get("error") \
            and last.at.astimezone(TOKYO).date() == local.date():
        return None
    try:
        result = write_backup(folder)
    except (BackupError, OSError) as exc:
        heartbeat.beat("backup", {"error": str(exc)[:300]})
        raise
    prune(Path(folder), config["HOTNET_BACKUP_KEEP"])
    heartbeat.beat("backup", {"path": str(result.path), "bytes": result.bytes,
                              "rows": result.rows, "revision": result.revision})
    return result


# --- reading and restoring -------------------------------------------------------------------

def read_manifest(path: str | Path) -> dict:
    """The manifest, after checking that every member is there and unchanged."""
    path = Path(path)
    try:
        with tarfile.open(path, "r") as archive:
            manifest = json.load(archive.extractfile("manifest.json"))
            for name, expected in manifest["files"].items():
                member = archive.extractfile(name)
                if member is None:
                    raise BackupError(f"the archive is damaged: {name} is missing")
                digest = hashlib.sha256()
                for chunk in iter(lambda member=member: member.read(1 << 20), b""):
                    digest.update(chunk)
                if digest.hexdigest() != expected:
                    raise BackupError(f"the archive is damaged: {name} does not match its checksum")
    except (tarfile.TarError, KeyError, ValueError, EOFError, OSError) as exc:
        raise BackupError(f"the archive cannot be read ({type(exc).__name__}: {exc}); "
                          "it is damaged or not a Hot-Net backup") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown archive format {manifest.get('format')!r}")
    return manifest


def restore_backup(path: str | Path) -> dict:
    """Load an archive into an empty database and an empty uploads folder, then migrate it to
    this version's schema. Returns the manifest."""
    config = current_app.config
    manifest = read_manifest(path)
    revisions = known_revisions()
    revision = manifest["alembic_revision"]
    if revision not in revisions:
        raise BackupError(
            f"the archive was made by a newer Hot-Net (schema {revision or 'none'}, app "
            f"{manifest['app_version']}); this one knows schemas up to {revisions[-1]}. "
            "Install that version (or newer) to restore it.")
    url = make_url(config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != manifest["database"]:
        raise BackupError(f"the archive holds a {manifest['database']} database; "
                          f"DATABASE_URL points to {url.get_backend_name()}")
    with db.engine.connect() as conn:
        present = inspect(conn).get_table_names()
    if present:
        raise BackupError(f"the database is not empty ({len(present)} tables, e.g. "
                          f"{sorted(present)[0]}); restore only into a new, empty database")
    uploads = Path(config["HOTNET_UPLOAD_DIR"])
    if uploads.is_dir() and any(uploads.iterdir()):
        raise BackupError(f"the uploads folder {uploads} is not empty; restore only into an empty one")
    db.session.remove()
    db.engine.dispose()
    with tempfile.TemporaryDirectory(prefix="hotnet-restore-") as work, \
            tarfile.open(path, "r") as archive:
        folder = Path(work)
        archive.extractall(folder, filter="data")
        if manifest["database"] == "postgresql":
            done = subprocess.run(
                ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
                 f"--dbname={_libpq_url(url)}", str(folder / "database.dump")],
                capture_output=True, text=True)
            if done.returncode != 0:
                raise BackupError(f"pg_restore failed: {done.stderr.strip()}")
        else:
            source = sqlite3.connect(folder / "database.sqlite3")
            target = sqlite3.connect(url.database)
            try:
                source.backup(target)
            finally:
                source.close()
                target.close()
        if (folder / "uploads").is_dir():
            shutil.copytree(folder / "uploads", uploads, dirs_exist_ok=True)
    with db.engine.connect() as conn:
        counts = _counts(conn)
    different = {name: (n, counts.get(name)) for name, n in manifest["tables"].items()
                 if counts.get(name) != n}
    if different:
        raise BackupError(f"the restored rows do not match the manifest: {different}")
    if revision != revisions[-1]:
        from flask_migrate import upgrade
        upgrade()
    return manifest
