"""What the benchmarks share: the PostgreSQL server, throw-away databases, free ports and
programs from Debian's packages."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess

import psycopg

# The app refuses to start without a strong key; the benchmarks' processes share this one.
os.environ.setdefault("SECRET_KEY", __import__("secrets").token_hex(32))

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_reachable() -> bool:
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
        return True
    except psycopg.OperationalError:
        return False


def create_database(name: str) -> str:
    """A new, empty database on the server (replacing one of that name); returns its URL."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def drop_database(name: str) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def debian_program(program: str, package: str, path: str) -> str:
    """The path of a program from Debian's packages, installing the package when missing."""
    found = shutil.which(program) or path
    if not os.path.exists(found):
        print(f"  installing {package} for {program} …", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                       stdout=subprocess.DEVNULL)
    return found
