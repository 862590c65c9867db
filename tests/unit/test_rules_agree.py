"""The rules of common.rules are the ones the database enforces (the public request models
are checked against them in test_gateway_apidoc.py)."""

from __future__ import annotations

import re
from pathlib import Path

from common import rules

REPO = Path(__file__).resolve().parents[2]
USERS_SQL = "\n".join(p.read_text() for p in
                      sorted((REPO / "services/users/migrations").glob("*.sql")))


def test_the_username_check_of_the_users_table_is_the_shared_pattern():
    checks = re.findall(r"username\s+text[^,]*CHECK \(username ~ '([^']+)'\)", USERS_SQL)
    assert checks == [rules.USERNAME_PATTERN]


def test_the_length_checks_of_the_users_table_are_the_shared_limits():
    limits = dict(re.findall(r"CHECK \(char_length\((\w+)\) <= (\d+)\)", USERS_SQL))
    assert limits == {"display_name": str(rules.DISPLAY_NAME_MAX), "bio": str(rules.BIO_MAX)}


def test_a_name_the_shared_rule_accepts_is_one_the_database_pattern_accepts():
    sql_pattern = re.compile(rules.USERNAME_PATTERN)
    for name in ("abc", "a_b_c", "x" * 30, "ab", "x" * 31, "Abc", "a-b", "ab\n"):
        assert rules.is_username(name) == (sql_pattern.fullmatch(name) is not None), name
