"""The set-up entrypoints find their schema inside their own package (as in the images)."""

from __future__ import annotations

from timeline.entrypoints import migrate as timeline_migrate
from users.entrypoints import migrate as users_migrate


def test_the_timeline_schema_is_read_from_the_package_for_the_given_keyspace():
    statements = timeline_migrate.cql_statements("ks_demo")
    assert statements, "no CQL statement found"
    assert all("ks_demo." in s for s in statements if s.upper().startswith("CREATE TABLE"))
    assert not any("${keyspace}" in s or s.startswith("--") for s in statements)
    assert timeline_migrate.CQL_SCHEMA.parent.name == "timeline"


def test_the_timeline_schema_makes_the_author_projection_table():
    [authors] = [s for s in timeline_migrate.cql_statements("ks_demo")
                 if "ks_demo.authors (" in s]
    assert authors.startswith("CREATE TABLE IF NOT EXISTS ks_demo.authors")
    for column in ("id bigint PRIMARY KEY", "username text", "display_name text",
                   "version bigint"):
        assert column in " ".join(authors.split())
    [by_name] = [s for s in timeline_migrate.cql_statements("ks_demo")
                 if "ks_demo.authors_by_username (" in s]
    assert by_name.startswith("CREATE TABLE IF NOT EXISTS ks_demo.authors_by_username")
    for column in ("username text PRIMARY KEY", "id bigint"):
        assert column in " ".join(by_name.split())


def test_the_users_migrations_ship_inside_the_users_package():
    names = sorted(p.name for p in users_migrate.MIGRATIONS.glob("*.sql"))
    assert names and names[0].startswith("0001.")
    assert users_migrate.MIGRATIONS.parent.name == "users"
    assert users_migrate.MIGRATIONS.is_dir()


def test_the_users_migrations_run_with_the_profiles_users_topic_and_celebrity_threshold():
    from urllib.parse import parse_qsl, urlsplit

    from common import config

    stores = config.stores()
    uri = urlsplit(users_migrate.backend_uri(stores))
    options = dict(parse_qsl(uri.query))["options"]
    assert options == (f"-c murmur.users_topic={stores.topic('users.v1')} "
                       f"-c murmur.celebrity_threshold={stores.profile.celebrity_threshold}")
    assert uri.path == f"/{stores.pg_database}"
