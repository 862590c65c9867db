"""The set-up entrypoints find their schema inside their own package (as in the images)."""

from __future__ import annotations

from timeline import migrate as timeline_migrate
from users import migrate as users_migrate


def test_the_timeline_schema_is_read_from_the_package_for_the_given_keyspace():
    statements = timeline_migrate.cql_statements("ks_demo")
    assert statements, "no CQL statement found"
    assert all("ks_demo." in s for s in statements if s.upper().startswith("CREATE TABLE"))
    assert not any("${keyspace}" in s or s.startswith("--") for s in statements)


def test_the_users_migrations_ship_inside_the_users_package():
    names = sorted(p.name for p in users_migrate.MIGRATIONS.glob("*.sql"))
    assert names and names[0].startswith("0001.")
    assert users_migrate.MIGRATIONS.parent.name == "users"
