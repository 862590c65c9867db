"""One client's bad input or overload never becomes another client's outage.

While an attacker sends each hostile pattern from its own address as fast as the edge
lets it, an ordinary user reads profiles and home timelines and posts: every one of its
requests succeeds. (bench/isolation.py measures the latency cost.)
"""

from __future__ import annotations

import pytest

from e2e._hostile import PATTERNS, Victim, attack

SECONDS = 4.0


@pytest.mark.parametrize("pattern", PATTERNS.keys())
def test_another_clients_reads_and_posts_all_succeed_during_an_attack(api, pattern):
    member = api.sign_up("iso")
    victim = Victim(api.base, member.auth, member.username)
    hostile = attack(PATTERNS[pattern], api.base, victim, SECONDS)
    assert sum(hostile.values()) >= 20, hostile  # the attack happened
    assert not any(500 <= status < 600 and status != 503 for status in hostile), hostile
    assert len(victim.answers) >= 10
    assert victim.failures() == [], f"{pattern}: {victim.failures()[:10]} (attacker: {hostile})"
