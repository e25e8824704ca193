"""`flask hotnet …` commands."""
from __future__ import annotations

import getpass

import click
from flask import current_app
from flask.cli import AppGroup

from app.errors import InvalidInput

hotnet = AppGroup("hotnet", help="Hot-Net administration commands.")


@hotnet.command("load-geography")
@click.argument("path", required=False)
def load_geography_command(path: str | None) -> None:
    """Add or update stations, areas and districts from the geography file."""
    from app.geography.services import load_geography

    try:
        result = load_geography(path or current_app.config["HOTNET_GEOGRAPHY"])
    except InvalidInput as exc:
        raise click.ClickException(str(exc))
    click.echo(f"geography: {result.added} added, {result.updated} updated")


@hotnet.command("create-admin")
@click.option("--email", prompt=True)
@click.option("--name", prompt=True)
@click.option("--password", envvar="HOTNET_ADMIN_PASSWORD", default=None,
              help="Prompted for when not given (or set HOTNET_ADMIN_PASSWORD).")
def create_admin_command(email: str, name: str, password: str | None) -> None:
    """Create the first admin (事務局) account."""
    from app.accounts.services import create_staff

    if not password:
        password = getpass.getpass("Password: ")
    try:
        create_staff(email, name, password, "admin", actor=None)
    except InvalidInput as exc:
        raise click.ClickException(str(exc))
    click.echo(f"admin {email} created")


@hotnet.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Only when the database holds no staff yet.")
def seed_demo_command(if_empty: bool) -> None:
    """Load the demo geography, staff and supporters (idempotent)."""
    from sqlalchemy import func, select

    from app.accounts.models import StaffUser
    from app.demo import ADMIN_EMAIL, DEMO_PASSWORD, seed_demo
    from app.extensions import db

    if if_empty and db.session.scalar(select(func.count(StaffUser.id))):
        click.echo("demo: the database already has data; nothing loaded")
        return
    result = seed_demo()
    click.echo(f"demo: {result['created']} supporters created")
    click.echo(f"demo sign-in: {ADMIN_EMAIL} / {DEMO_PASSWORD} (admin), "
               f"coordinator1@hotnet.example.jp … coordinator8@hotnet.example.jp / {DEMO_PASSWORD}")


@hotnet.command("scheduler")
def scheduler_command() -> None:
    """Run a scheduler. Several may run (for failover): one is active, the others stand by
    and take over within seconds when it stops."""
    from app.scheduler import run

    raise SystemExit(run(current_app._get_current_object()))


@hotnet.command("mailcatcher")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=8025, type=int)
@click.option("--dir", "folder", default=None, help="Defaults to HOTNET_MAILCATCHER_DIR.")
def mailcatcher_command(host: str, port: int, folder: str | None) -> None:
    """Run the demo mail catcher (a local SMTP server) in the foreground."""
    from app.mailcatcher.server import serve

    folder = folder or current_app.config["HOTNET_MAILCATCHER_DIR"]
    if not folder:
        raise click.ClickException("set HOTNET_MAILCATCHER_DIR or pass --dir")
    serve(folder, host, port)


@hotnet.command("sender")
@click.option("--until-idle", is_flag=True, help="Stop when nothing is due instead of waiting.")
@click.option("--outbox/--no-outbox", default=True,
              help="Also send the outbox (sign-in links, receipts …) between batches.")
def sender_command(until_idle: bool, outbox: bool) -> None:
    """Send newsletter e-mail from the delivery ledger (several may run on PostgreSQL), in
    HOTNET_SEND_PROCESSES worker processes of HOTNET_SEND_CONNECTIONS connections each."""
    from app.newsletters.sender import run_processes
    from app.outbox.sender import deliver

    if outbox:
        first = deliver(until_idle=True)
        click.echo(f"outbox: sent {first.sent}, deferred {first.deferred}, failed {first.failed}, "
                   f"skipped {first.skipped}")
    report = run_processes(current_app.config["HOTNET_SEND_PROCESSES"], until_idle=until_idle)
    click.echo(f"sent {report.sent}, deferred {report.deferred}, failed {report.failed}, "
               f"skipped {report.skipped}")
    if report.capped:
        click.echo(f"today's cap of {current_app.config['HOTNET_SEND_DAILY_CAP']} messages "
                   f"(HOTNET_SEND_DAILY_CAP) is reached: the rest goes after midnight, Japan time")


@hotnet.command("dkim-keygen")
@click.option("--selector", default="hotnet", show_default=True)
@click.option("--domain", required=True, help="The domain in your From address, e.g. example.jp")
@click.option("--out", "key_file", default=None,
              help="Where to write the private key (default: the instance folder).")
def dkim_keygen_command(selector: str, domain: str, key_file: str | None) -> None:
    """Make a DKIM key pair and print the DNS record to publish."""
    import os

    from app.outbox.mailauth import make_key

    key_file = key_file or os.path.join(current_app.instance_path, f"dkim-{selector}.key")
    if os.path.exists(key_file):
        raise click.ClickException(f"{key_file} exists already; choose another --out or selector")
    record = make_key(key_file, selector, domain)
    click.echo(f"Private key written to {key_file} (keep it secret; back it up).")
    click.echo("Publish this TXT record in your domain's DNS:")
    click.echo(record)
    click.echo("Then set: HOTNET_DKIM_DOMAIN=%s HOTNET_DKIM_SELECTOR=%s HOTNET_DKIM_KEY_FILE=%s"
               % (domain, selector, key_file))


@hotnet.command("read-bounces")
def read_bounces_command() -> None:
    """Read the bounce mailbox now (the scheduler does it every few minutes)."""
    from app.newsletters.bounces import read_mailbox

    result = read_mailbox()
    click.echo(f"read {result.read}, bounces {result.bounces}, held {result.held}")


@hotnet.command("backup")
@click.argument("path", required=False)
def backup_command(path: str | None) -> None:
    """Write one backup archive (database, uploads, geography, manifest) to PATH: a file, or
    a folder (default HOTNET_BACKUP_DIR). Safe while the app runs."""
    from app import heartbeat
    from app.backup import BackupError, write_backup

    if not path and not current_app.config.get("HOTNET_BACKUP_DIR"):
        raise click.ClickException("Give a PATH, or set HOTNET_BACKUP_DIR.")
    try:
        result = write_backup(path)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    heartbeat.beat("backup", {"path": str(result.path), "bytes": result.bytes,
                              "rows": result.rows, "revision": result.revision})
    click.echo(f"backup written: {result.path} ({result.bytes / 1e6:.1f} MB, {result.rows} rows, "
               f"schema {result.revision})")


@hotnet.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
def restore_command(archive: str) -> None:
    """Restore ARCHIVE into an empty database and an empty uploads folder, checking every
    checksum first and migrating an older schema forward."""
    from app.backup import BackupError, restore_backup

    try:
        manifest = restore_backup(archive)
    except BackupError as exc:
        raise click.ClickException(f"not restored: {exc}") from exc
    rows = sum(manifest["tables"].values())
    click.echo(f"restored {rows} rows in {len(manifest['tables'])} tables and "
               f"{sum(1 for name in manifest['files'] if name.startswith('uploads/'))} files "
               f"from {archive} (made {manifest['created_at']} by Hot-Net "
               f"{manifest['app_version']}, schema {manifest['alembic_revision']}).")


@hotnet.command("check")
def check_command() -> None:
    """Say what is unsafe or missing for production; exits 1 when anything is unsafe."""
    from app.checks import production_findings

    findings = production_findings(current_app._get_current_object())
    for finding in findings:
        click.echo(f"{finding.level.upper():8} {finding.subject}: {finding.advice}")
    errors = sum(f.level == "error" for f in findings)
    click.echo(f"{errors} unsafe, {len(findings) - errors} to improve"
               if findings else "ready for production: nothing unsafe or missing found")
    if errors:
        raise SystemExit(1)
