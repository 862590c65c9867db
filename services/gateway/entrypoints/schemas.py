"""The public API's request and response models.

The same pydantic models validate requests (through flask-openapi3) and generate the
OpenAPI document served at /api/v1/openapi.json, so the two cannot drift apart.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, ClassVar, Optional

from pydantic import BaseModel, ConfigDict, Field

from common.rules import (
    BIO_MAX, DISPLAY_NAME_MAX, IDEMPOTENCY_KEY_MAX, MAX_ID, PASSWORD_MAX, PASSWORD_MIN,
    TWEET_MAX, USERNAME_MAX, USERNAME_MIN, USERNAME_PATTERN,
)

# Cursors are opaque tokens minted by the services; this only keeps junk out of the URL.
CURSOR_PATTERN = r"^[A-Za-z0-9_\-=.:~]{1,512}$"

Username = Annotated[str, Field(
    pattern=USERNAME_PATTERN,
    description=f"{USERNAME_MIN}-{USERNAME_MAX} lowercase letters, digits or underscores")]
DisplayName = Annotated[str, Field(max_length=DISPLAY_NAME_MAX)]


# ------------------------------------------------------------------------------ requests


class RequestModel(BaseModel):
    """A request model whose JSON schema is built once, not on every request.

    flask-openapi3 asks a query/header/path model for its JSON schema while validating each
    request; building it costs about 0.8 ms of CPU, more than the rest of the gateway's own
    work, so it is cached per model and arguments.
    """

    _schemas: ClassVar[dict[tuple, dict[str, Any]]] = {}

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        key = (cls, args, tuple(sorted(kwargs.items(), key=lambda kv: kv[0])))
        try:
            return copy.deepcopy(RequestModel._schemas[key])
        except KeyError:
            schema = super().model_json_schema(*args, **kwargs)
            RequestModel._schemas[key] = schema
            return copy.deepcopy(schema)


class NewUser(RequestModel):
    """An account to create."""

    model_config = ConfigDict(extra="forbid")
    username: Username
    password: str = Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)
    display_name: Optional[DisplayName] = None


class Credentials(RequestModel):
    """Username and password to open a session with."""

    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=USERNAME_MAX)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)


class ProfileChanges(RequestModel):
    """Profile fields to change; absent fields keep their value."""

    model_config = ConfigDict(extra="forbid")
    display_name: str = Field(None, max_length=DISPLAY_NAME_MAX)  # type: ignore[assignment]
    bio: str = Field(None, max_length=BIO_MAX)  # type: ignore[assignment]


class NewTweet(RequestModel):
    """A tweet to post."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=TWEET_MAX)


class PageQuery(RequestModel):
    """Cursor pagination: `limit` items after the opaque `cursor` of the previous page."""

    # An unknown parameter is more likely a typo (`?limt=5`) than something to ignore.
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=100)
    cursor: Optional[str] = Field(None, pattern=CURSOR_PATTERN)


class UserPath(RequestModel):
    username: Username


class TweetPath(RequestModel):
    id: int = Field(ge=1, le=MAX_ID, description="Tweet id")


class IfMatchHeader(RequestModel):
    # Optional in the schema so that a missing header reaches the 428 answer, not a 422.
    if_match: Optional[str] = Field(None, alias="If-Match", max_length=64,
                                    description="The ETag of the profile being changed")


class IdempotencyHeader(RequestModel):
    idempotency_key: Optional[str] = Field(
        None, alias="Idempotency-Key", min_length=1, max_length=IDEMPOTENCY_KEY_MAX,
        pattern=r"^[\x21-\x7e]+$",
        description="Repeat a post with the same key to get the same tweet back")


# ----------------------------------------------------------------------------- responses


class User(BaseModel):
    """A public profile."""

    id: str
    username: str
    display_name: str
    bio: str
    followers_count: int
    following_count: int
    created_at: str


class UserPage(BaseModel):
    """A page of profiles."""

    items: list[User]
    next_cursor: Optional[str]


class Session(BaseModel):
    """An access token to send as `Authorization: Bearer <access_token>`."""

    access_token: str
    token_type: str
    expires_in: int


class Author(BaseModel):
    """Who wrote a tweet; the names are empty while the author's profile is not known yet."""

    id: str
    username: str
    display_name: str


class Tweet(BaseModel):
    """A tweet with its author."""

    id: str
    author: Author
    text: str
    created_at: str


class TweetPage(BaseModel):
    """A page of tweets, newest first."""

    items: list[Tweet]
    next_cursor: Optional[str]


class FieldError(BaseModel):
    """What is wrong with one field of a request."""

    field: str
    message: str


class ProblemDetails(BaseModel):
    """An RFC 9457 problem: every error of the API has this shape."""

    type: str
    title: str
    status: int
    detail: Optional[str] = None
    errors: Optional[list[FieldError]] = None


class OpenAPIDocument(BaseModel):
    """This document."""

    model_config = ConfigDict(extra="allow")
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
