"""`make test`: the whole suite on SQLite and PostgreSQL, saying plainly what was skipped.

Every test that touches the database runs once per backend (the `backend` fixture). When
PostgreSQL does not answer, its half is skipped with a clear line — except under CI=true,
where that is a failure.
"""
from __future__ import annotations

import sys

import pytest

from tests.conftest import IN_CI, PG_URL, postgres_reachable


def main() -> int:
    reachable = postgres_reachable()
    if not reachable:
        if IN_CI:
            print(f"FAIL: PostgreSQL at {PG_URL} is not reachable, and CI=true requires it.")
            return 1
        print(f"NOTE: PostgreSQL at {PG_URL} is not reachable: the PostgreSQL half of the "
              "suite will be SKIPPED. Set TEST_DATABASE_URL or start PostgreSQL to run it.")
    code = pytest.main(["tests", *sys.argv[1:]])
    if not reachable:
        print("NOTE: the PostgreSQL half was SKIPPED (PostgreSQL not reachable); only SQLite ran.")
    else:
        print("Ran on SQLite and on PostgreSQL.")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
