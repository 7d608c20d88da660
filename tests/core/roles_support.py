"""Two PostgreSQL roles of a test's own, an owner and the bot's runtime role, and a database the owner owns.

Roles are cluster-wide, so their names carry a random suffix, and they are dropped after the test even
when it fails (the database first, which takes the runtime role's privileges in it along).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url


@dataclass(frozen=True)
class Roles:
    """The roles and database made for one test, and URLs connecting as each."""

    owner: str
    runtime: str
    database: str
    admin_url: str
    """A superuser's connection to the test's database (a DBA at a prompt)."""

    def url(self, role: str) -> str:
        """DATABASE_URL connecting to the test's database as `role` (trust auth: no password)."""
        return make_url(self.admin_url).set(username=role, password=None).render_as_string(hide_password=False)

    @property
    def owner_url(self) -> str:
        return self.url(self.owner)

    @property
    def runtime_url(self) -> str:
        return self.url(self.runtime)


def connect(url: str) -> psycopg.Connection:
    """A psycopg connection in autocommit (each statement its own transaction)."""
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(libpq, autocommit=True, connect_timeout=5)


@contextmanager
def owner_and_runtime(server_url: str, *, runtime_prefix: str = "opsroom_app") -> Iterator[Roles]:
    """Make an owner role, a runtime role and a database the owner owns on the server of `server_url`
    (a superuser's URL); drop all three afterwards."""
    suffix = secrets.token_hex(4)
    owner, runtime, database = f"opsroom_owner_{suffix}", f"{runtime_prefix}_{suffix}", f"opsroom_priv_{suffix}"
    made: list[str] = []
    with connect(server_url) as admin:
        try:
            for role in (owner, runtime):
                admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
                made.append(role)
            admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database),
                                                                         sql.Identifier(owner)))  # fmt: skip
            admin_url = make_url(server_url).set(database=database).render_as_string(hide_password=False)
            yield Roles(owner=owner, runtime=runtime, database=database, admin_url=admin_url)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            for role in reversed(made):
                # Whatever the role still holds on this server's other databases' objects goes with it.
                admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


_GRANTED = """
SELECT 'table ' || c.relname, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.relnamespace = 'public'::regnamespace AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %(r)s)
UNION ALL
SELECT 'schema ' || n.nspname, a.privilege_type FROM pg_namespace n, aclexplode(n.nspacl) a
 WHERE n.nspname = 'public' AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %(r)s)
UNION ALL
SELECT 'database', a.privilege_type FROM pg_database d, aclexplode(d.datacl) a
 WHERE d.datname = current_database() AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %(r)s)
"""


def granted(url: str, role: str) -> set[tuple[str, str]]:
    """Every privilege granted to `role` in the database of `url`: (object, privilege)."""
    with connect(url) as conn:
        return {(str(what), str(privilege)) for what, privilege in conn.execute(_GRANTED, {"r": role})}
