"""The public API's request and response models.

The same pydantic models validate requests (through flask-openapi3) and generate the
OpenAPI document served at /api/v1/openapi.json, so the two cannot drift apart.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, ClassVar, Literal, Optional

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from common.rules import (
    BIO_MAX, DISPLAY_NAME_MAX, IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_KEY_PATTERN, MAX_ID, PASSWORD_MAX, PASSWORD_MIN,
    TWEET_MAX, USERNAME_MAX, USERNAME_MIN, USERNAME_PATTERN, parse_id, text_pattern,
    text_problem,
)

# Cursors are sealed by the services (common.cursors) in base64url; the gateway can only
# tell that a value is no cursor at all: another alphabet, or far too long.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
CURSOR_MAX = 128

Username = Annotated[str, Field(
    pattern=USERNAME_PATTERN,
    description=f"{USERNAME_MIN}-{USERNAME_MAX} lowercase letters, digits or underscores")]


def acceptable_text(limit: int, *, required: bool = False, multiline: bool = True) -> AfterValidator:
    """The shared text rule (common.rules) on a string field, as pydantic's own error."""

    def check(value: str) -> str:
        problem = text_problem(value.strip() if required else value, limit,
                               required=required, multiline=multiline)
        if problem:
            raise PydanticCustomError("text", problem)
        return value

    return AfterValidator(check)


TEXT_RULE = ("No control characters, bidirectional overrides, noncharacters or unpaired "
             "surrogates; not only blanks or invisible characters.")
# The rule's characters as a pattern, in the document only: the validators below say
# which character is wrong, and apply the parts of the rule no pattern can.
DisplayName = Annotated[str, Field(max_length=DISPLAY_NAME_MAX,
                                   json_schema_extra={"pattern": text_pattern(multiline=False)},
                                   description=f"One line. {TEXT_RULE}"),
                        acceptable_text(DISPLAY_NAME_MAX, multiline=False)]
Bio = Annotated[str, Field(max_length=BIO_MAX, json_schema_extra={"pattern": text_pattern()},
                           description=f"Lines allowed. {TEXT_RULE}"),
                acceptable_text(BIO_MAX)]
TweetText = Annotated[str, Field(min_length=1, max_length=TWEET_MAX,
                                 json_schema_extra={"pattern": text_pattern()},
                                 description=f"Lines allowed; blanks around it are dropped. "
                                             f"{TEXT_RULE}"),
                      acceptable_text(TWEET_MAX, required=True)]


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
    display_name: DisplayName = None  # type: ignore[assignment]
    bio: Bio = None  # type: ignore[assignment]


class NewTweet(RequestModel):
    """A tweet to post."""

    model_config = ConfigDict(extra="forbid")
    text: TweetText


class PageQuery(RequestModel):
    """Cursor pagination: `limit` items after the opaque `cursor` of the previous page."""

    # An unknown parameter is more likely a typo (`?limt=5`) than something to ignore.
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=100)
    cursor: Optional[str] = Field(
        None, min_length=1, max_length=CURSOR_MAX, pattern=CURSOR_PATTERN,
        description="The `next_cursor` of the previous page of this same list (absent: the "
                    "first page). Opaque and bound to the list that issued it: a cursor of "
                    "another list (another user's, or another kind of list), or one that "
                    "was altered, cut or made up, is a 422.")


def not_me(value: Any) -> Any:
    """A username path segment other than `me`, which in /users/me/... names the caller."""
    if value == "me":
        raise PydanticCustomError(
            "username", "`me` is not a username: it stands for you, and you cannot follow "
                        "yourself")
    return value


class UserPath(RequestModel):
    username: Annotated[Username, BeforeValidator(not_me)]


def canonical_id(value: Any) -> Any:
    """An id as written in a path: only its canonical decimal (no sign, leading zero,
    blank or fraction: common.rules.parse_id) names it, so one resource has one URL."""
    if isinstance(value, str):
        parsed = parse_id(value)
        if parsed is None:
            raise PydanticCustomError(
                "id", "must be an id: a decimal integer from 1 to {max}, without sign, "
                      "leading zeros, blanks or fraction", {"max": MAX_ID})
        return parsed
    return value


class TweetPath(RequestModel):
    id: Annotated[int, BeforeValidator(canonical_id)] = Field(
        ge=1, le=MAX_ID, description="Tweet id, in canonical decimal as the API writes it "
                                     "(`01`, `+1` or `1.0` is not an id: 422)")


# Room for a list of a few dozen entity tags; what is in it is checked by the view.
CONDITION_MAX = 1024
# `*`, or a list of entity tags (RFC 9110 §8.8.3): the If-Match values an edit takes
# (common.preconditions also takes blanks around them and empty list elements).
IF_MATCH_PATTERN = r'^\*$|^(W/)?"[\x21\x23-\x7e]*"([ \t]*,[ \t]*(W/)?"[\x21\x23-\x7e]*")*$'


class IfMatchHeader(RequestModel):
    # Optional to the validation so that a missing header reaches the 428 answer, not a
    # 422; required in the document, since without it no edit is made.
    model_config = ConfigDict(json_schema_extra={"required": ["If-Match"]})

    if_match: Optional[str] = Field(
        None, alias="If-Match", max_length=CONDITION_MAX,
        # In the document only: a value off this grammar is answered 428, not 422.
        json_schema_extra={"pattern": IF_MATCH_PATTERN},
        description="The ETag of the profile you read (or a list of entity tags, or `*`). "
                    "Required: without it, or with a value that is no list of entity tags, "
                    "the edit is refused with 428")


class ReadConditionHeaders(RequestModel):
    """The preconditions of a read (RFC 9110 §13); a value that is no list of entity tags
    is ignored."""

    if_none_match: Optional[str] = Field(
        None, alias="If-None-Match", max_length=CONDITION_MAX,
        description="The ETag(s) you hold: 304 without a body while the representation "
                    "still has one of them (weak comparison), or `*`")
    if_match: Optional[str] = Field(
        None, alias="If-Match", max_length=CONDITION_MAX,
        description="412 unless the representation has one of these ETags (strong "
                    "comparison), or `*`")


def idempotency_key(repeat: str) -> Any:
    """The optional Idempotency-Key header (the shared rule), saying what a repeat gets."""
    return Field(None, alias="Idempotency-Key", min_length=1, max_length=IDEMPOTENCY_KEY_MAX,
                 pattern=IDEMPOTENCY_KEY_PATTERN, description=repeat)


class SignupIdempotencyHeader(RequestModel):
    idempotency_key: Optional[str] = idempotency_key(
        "Repeat a sign-up with the same key (and username) to get the same account back "
        "instead of a 409")


class IdempotencyHeader(RequestModel):
    idempotency_key: Optional[str] = idempotency_key(
        "Repeat a post with the same key to get the same tweet back")


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


class JsonWebKey(BaseModel):
    """A public key that signs access tokens: Ed25519 (RFC 8037), named by its RFC 7638
    thumbprint, which a token names in its `kid` header."""

    kty: str = Field(description='"OKP"')
    crv: str = Field(description='"Ed25519"')
    x: str = Field(description="The public key, base64url")
    kid: str = Field(description="Key id: the key's RFC 7638 thumbprint")
    use: str = Field(description='"sig"')
    alg: str = Field(description='"EdDSA"')


class JsonWebKeySet(BaseModel):
    """The public keys access tokens are signed with (RFC 7517): the current one and, after
    a rotation, those whose tokens may still be valid."""

    model_config = ConfigDict(openapi_extra={"headers": {"Cache-Control": {
        "description": "How long the set may be cached (`public, max-age=<seconds>`); "
                       "fetch it again on meeting a `kid` it does not hold",
        "schema": {"type": "string"}}}})
    keys: list[JsonWebKey]


# ------------------------------------------------------------------------- system status

ComponentName = Literal["nginx", "gateway", "users", "timeline", "fanout", "users-relay",
                        "timeline-relay", "timeline-authors", "postgres", "redis",
                        "cassandra", "kafka"]


class Component(BaseModel):
    """One part of the system and how it is now."""

    name: ComponentName
    kind: Literal["edge", "service", "worker", "store"]
    status: Literal["up", "degraded", "down", "unknown"] = Field(
        description="down: it does not answer, or no service can reach it; degraded: it "
                    "answers but a readiness check fails or a breaker is not closed; "
                    "unknown: nothing that would tell was observed")
    detail: str = Field(description="Why, in a few words")


class Edge(BaseModel):
    """An arrow of the system's shape: `from` calls `to`, or data flows from it to `to`."""

    model_config = ConfigDict(populate_by_name=True)
    from_: ComponentName = Field(alias="from")
    to: ComponentName


class BreakerState(BaseModel):
    """A circuit breaker, named `<process>.<dependency>`, in its worst state over the
    process's workers."""

    process: str
    name: str
    state: Literal["closed", "half_open", "open"]


class Pipeline(BaseModel):
    """The asynchronous paths: null where the process that exports the figure did not
    answer (or has not measured it yet)."""

    consumer_lag: Optional[int] = Field(
        description="Messages of tweets.v1 and follows.v1 the fanout group has not processed")
    fanout_lag_seconds: Optional[float] = Field(
        description="Mean seconds from an event to its timeline writes, over the window")
    outbox_backlog: Optional[int] = Field(
        description="Outbox rows of users and timeline not yet published to Kafka")
    authors_consumer_lag: Optional[int] = Field(
        description="users.v1 messages timeline's author projection has not applied")


class CacheFigures(BaseModel):
    """One cache (`<service>.<cache>`): lookups and the share of them it answered."""

    name: str
    hit_ratio: Optional[float] = Field(ge=0, le=1, description="null without lookups")
    requests: int = Field(ge=0, description="Lookups over the window")


class SystemStatus(BaseModel):
    """The system's state, as the gateway reads it from every process: states and numbers
    only, never an address. At most a couple of seconds old (`generated_at`)."""

    model_config = ConfigDict(openapi_extra={"headers": {"Cache-Control": {
        "description": "`max-age=<seconds>`: how long this summary is shared",
        "required": True, "schema": {"type": "string"}}}})
    generated_at: str = Field(description="When it was assembled (RFC 3339, UTC)")
    status: Literal["ok", "degraded", "down"] = Field(
        description="down: the gateway can reach neither users nor timeline; degraded: a "
                    "component is not up or a breaker is not closed")
    components: list[Component]
    edges: list[Edge]
    breakers: list[BreakerState]
    pipeline: Pipeline
    caches: list[CacheFigures]
    window_seconds: Optional[float] = Field(
        description="Seconds the recent figures (fan-out lag, caches) cover; null: since "
                    "each process started")
