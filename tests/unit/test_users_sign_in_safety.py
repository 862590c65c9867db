"""Sign-up and sign-in under pressure: retries that are safe, floods that are bounded."""

from __future__ import annotations

import pytest

from common import resilience
from common.resilience import DeadlineExceeded
from unit._users_fakes import memory_ports
from users.adapters.tokens import Argon2Passwords
from users.domain.commands import RegisterUser, StartSession
from users.domain.errors import (
    IdempotencyKeyReused,
    InvalidCredentials,
    PasswordWorkBusy,
    SignupKeyTaken,
    TooManyAttempts,
    UsernameTaken,
)
from users.service_layer import handlers
from users.service_layer.ports import Ports

PASSWORD = "correct horse"


@pytest.fixture
def ports() -> Ports:
    return memory_ports()


def sign_up(ports: Ports, username: str, key: str | None = None):
    return handlers.register_user(RegisterUser(username, PASSWORD, idempotency_key=key), ports)


def sign_in(ports: Ports, username: str, password: str = PASSWORD, client: str = "10.0.0.1"):
    return handlers.start_session(StartSession(username, password, client=client), ports)


# ----------------------------------------------------------------- idempotent sign-up


def test_a_repeated_sign_up_with_its_key_gets_the_same_account_not_a_409(ports):
    first = sign_up(ports, "ada", key="k-1")
    assert sign_up(ports, "ada", key="k-1") == first
    assert len(ports.users.rows) == 1
    assert len(ports.users.events) == 1  # announced once


def test_a_repeat_without_the_key_is_still_a_409(ports):
    sign_up(ports, "ada", key="k-1")
    with pytest.raises(UsernameTaken):
        sign_up(ports, "ada")


def test_a_key_that_made_another_account_is_refused(ports):
    sign_up(ports, "ada", key="k-1")
    with pytest.raises(IdempotencyKeyReused):
        sign_up(ports, "bob", key="k-1")
    assert ports.users.by_username("bob") is None


def test_two_repeats_racing_both_get_the_account_the_winner_made(ports):
    # Both looked the key up before either committed: the loser meets the winner's row.
    winner = sign_up(ports, "ada", key="k-1")
    lookups = iter([None, winner])
    real = ports.users.by_signup_key
    ports.users.by_signup_key = lambda key: next(lookups, None) or real(key)
    assert sign_up(ports, "ada", key="k-1") == winner


def test_a_race_lost_to_a_different_sign_up_is_reported_as_it_is(ports):
    ports.users.add = lambda *a, **k: (_ for _ in ()).throw(SignupKeyTaken())
    with pytest.raises(SignupKeyTaken):
        sign_up(ports, "ada", key="k-1")


def test_no_account_is_made_once_the_caller_has_stopped_waiting(ports):
    with resilience.deadline(handlers.COMMIT_MARGIN / 2):
        with pytest.raises(DeadlineExceeded):
            sign_up(ports, "ada")
    assert ports.users.by_username("ada") is None


# ------------------------------------------------------------------ sign-in throttle


def test_an_account_is_throttled_after_its_failures_even_with_the_right_password(ports):
    sign_up(ports, "ada")
    limit = ports.sign_ins.limits["account"]
    for n in range(limit):
        with pytest.raises(InvalidCredentials):
            sign_in(ports, "ada", "wrong password", client=f"10.0.0.{n}")
    with pytest.raises(TooManyAttempts) as refused:
        sign_in(ports, "ada")
    assert refused.value.retry_in > 0


def test_a_throttled_attempt_costs_no_password_hash(ports):
    sign_up(ports, "ada")
    for _ in range(ports.sign_ins.limits["account"]):
        with pytest.raises(InvalidCredentials):
            sign_in(ports, "ada", "wrong password")
    hashed = len(ports.passwords.verified)
    with pytest.raises(TooManyAttempts):
        sign_in(ports, "ada", "wrong password")
    assert len(ports.passwords.verified) == hashed


def test_an_address_is_throttled_across_accounts_including_unknown_ones(ports):
    sign_up(ports, "ada")
    for n in range(ports.sign_ins.limits["address"]):
        with pytest.raises(InvalidCredentials):
            sign_in(ports, f"nobody_{n}", "wrong password", client="10.9.9.9")
    with pytest.raises(TooManyAttempts):
        sign_in(ports, "ada", client="10.9.9.9")
    assert sign_in(ports, "ada", client="10.0.0.2").access_token  # another address


def test_a_successful_sign_in_clears_the_account_failures(ports):
    sign_up(ports, "ada")
    for _ in range(ports.sign_ins.limits["account"] - 1):
        with pytest.raises(InvalidCredentials):
            sign_in(ports, "ada", "wrong password")
    sign_in(ports, "ada")
    with pytest.raises(InvalidCredentials):
        sign_in(ports, "ada", "wrong password")  # counted from zero again, not a 429


# ---------------------------------------------------------------- password bulkhead


def cheap_passwords(slots: int, slot_wait: float) -> Argon2Passwords:
    return Argon2Passwords(time_cost=1, memory_kib=8, parallelism=1, slots=slots,
                           slot_wait=slot_wait)


def test_hashing_beyond_the_slots_is_refused_after_the_wait_not_queued_forever():
    passwords = cheap_passwords(slots=2, slot_wait=0.05)
    assert passwords._slots.acquire(timeout=1) and passwords._slots.acquire(timeout=1)
    try:  # two hashes in progress: the third finds no slot
        with pytest.raises(PasswordWorkBusy):
            passwords.verify(passwords.dummy_hash, "third")
    finally:
        passwords._slots.release()
    assert passwords.verify(passwords.hash("fourth"), "fourth")  # a slot came back


def test_a_slot_is_not_waited_for_past_the_request_deadline():
    passwords = cheap_passwords(slots=1, slot_wait=30)
    passwords._slots.acquire()
    with resilience.deadline(0.05):
        with pytest.raises(PasswordWorkBusy):
            passwords.hash("x")
