"""Why the users service refuses a request: plain exceptions, mapped to responses at the edge."""

from __future__ import annotations


class UsersError(Exception):
    """Base of the users domain's refusals."""


class UserNotFound(UsersError):
    """No such user."""

    def __init__(self, detail: str = "No such user.") -> None:
        super().__init__(detail)
        self.detail = detail


class UsernameTaken(UsersError):
    """The username belongs to someone else."""

    def __init__(self, username: str) -> None:
        super().__init__(f"The username {username!r} is taken.")
        self.username = username


class InvalidCredentials(UsersError):
    """Unknown username or wrong password (deliberately indistinguishable)."""

    def __init__(self) -> None:
        super().__init__("The username or password is wrong.")


class SignupKeyTaken(UsersError):
    """Another sign-up with the same Idempotency-Key committed first (a race of repeats)."""


class TooManyAttempts(UsersError):
    """Sign-in is throttled for this account or address; try again in `retry_in` seconds."""

    def __init__(self, retry_in: int) -> None:
        super().__init__(f"Too many failed sign-ins; try again in {retry_in}s.")
        self.retry_in = retry_in


class PasswordWorkBusy(UsersError):
    """Every slot for password hashing is taken (the bulkhead of sign-up and sign-in)."""

    def __init__(self, retry_in: int = 1) -> None:
        super().__init__("Too many sign-ups and sign-ins at once; try again shortly.")
        self.retry_in = retry_in


class IdempotencyKeyReused(UsersError):
    """A sign-up's Idempotency-Key already made an account with another username."""

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key already created another account.")


class StoreUnavailable(UsersError):
    """The user database is down or too slow; worth trying again in `retry_in` seconds."""

    def __init__(self, retry_in: int = 1) -> None:
        super().__init__(f"The user database is not answering; try again in {retry_in}s.")
        self.retry_in = retry_in


class VersionMismatch(UsersError):
    """The profile changed since the client read it; `current` is its version now."""

    def __init__(self, current: int) -> None:
        super().__init__(f"The profile is at version {current}; read it again.")
        self.current = current
