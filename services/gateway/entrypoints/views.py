"""The public API under /api/v1: parse the request, run one use case, render its result."""

from __future__ import annotations

import functools
import hashlib
import inspect
from http import HTTPStatus
from typing import Any, Callable

from flask import Response, current_app, g, jsonify, request
from flask_openapi3 import APIBlueprint, Tag
from flask_openapi3.models import Link, Schema
from werkzeug.routing import BaseConverter

from common import preconditions
from common.problems import Problem
from common.service import Service

from gateway.domain.errors import Unauthenticated
from gateway.domain.model import Principal, Result
from gateway.entrypoints.schemas import (
    Credentials, IdempotencyHeader, IfMatchHeader, NewTweet, NewUser, OpenAPIDocument,
    PageQuery, ProfileChanges, ReadConditionHeaders, Session, SignupIdempotencyHeader,
    SystemStatus, Tweet, TweetPage, TweetPath, User, UserPage, UserPath,
)
from gateway.entrypoints.schemas import JsonWebKeySet
from gateway.service_layer import handlers
from gateway.service_layer.ports import Ports
from gateway.service_layer.status import StatusBoard, system_status

PREFIX = "/api/v1"
PROBLEM_REF = "#/components/schemas/ProblemDetails"
BEARER = [{"bearerAuth": []}]

ACCOUNTS, GRAPH, TWEETS, META = (Tag(name="accounts", description="Sign-up, sign-in, profiles"),
                                 Tag(name="graph", description="Who follows whom"),
                                 Tag(name="tweets", description="Posting and reading tweets"),
                                 Tag(name="meta", description="This API's description"))
SYSTEM = Tag(name="system", description="How the system behind the API is doing")


# A 304 answers a conditional read (If-None-Match) with the ETag and without a body.
NOT_MODIFIED = {"description": "Not Modified: the representation still has an ETag you sent "
                               "in If-None-Match; no body",
                "headers": {"ETag": {"description": "The representation's entity tag",
                                     "required": True, "schema": {"type": "string"}}}}


# Statuses whose meaning here is narrower than their phrase: most are answered by the edge
# (nginx) before a gateway sees the request, so every operation may meet them.
MEANINGS = {
    400: "Bad Request: the request line or a header is malformed (answered by the edge)",
    408: "Request Timeout: the request took too long to arrive (answered by the edge)",
    413: "Content Too Large: the body is over 64 KiB (answered by the edge)",
    414: "URI Too Long: the request line is over 4 KiB (answered by the edge)",
    415: "Unsupported Media Type: the body is not `application/json`",
    429: "Too Many Requests: a rate limit; come back after Retry-After seconds",
    431: "Request Header Fields Too Large: a header is over 4 KiB, or all of them over "
         "16 KiB (answered by the edge)",
    503: "Service Unavailable: no gateway, or a dependency it needs, could answer in time; "
         "come back after Retry-After seconds",
}


def _header(description: str, required: bool = True, **schema: Any) -> dict[str, Any]:
    return {"description": description, "required": required,
            "schema": {"type": "string", **schema}}


RETRY_AFTER = _header("Seconds to wait before trying again", type="integer", minimum=0)
# The headers problems of a status carry (RFC 9110 §10.2.3, §15.5.2, §15.5.6, RFC 6750).
PROBLEM_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": _header("The scheme to authenticate with: `Bearer`")},
    405: {"Allow": _header("The methods this resource answers")},
    409: {"Retry-After": {**RETRY_AFTER, "required": False,
                          "description": "Set when the same request may succeed later"}},
    415: {"Accept-Post": _header("On a POST: the media type its body must have",
                                 required=False),
          "Accept-Patch": _header("On a PATCH: the media type its body must have",
                                  required=False)},
    429: {"Retry-After": RETRY_AFTER},
    503: {"Retry-After": RETRY_AFTER},
}


def problems(*statuses: int, **ok: Any) -> dict[Any, Any]:
    """OpenAPI responses: `ok` as given (e.g. `_201=User`) plus problem+json for `statuses`."""
    responses: dict[Any, Any] = {int(k.lstrip("_")): v for k, v in ok.items()}
    for status in statuses:
        responses[status] = {
            "description": MEANINGS.get(status, HTTPStatus(status).phrase),
            "content": {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}},
        }
        if status in PROBLEM_HEADERS:
            responses[status]["headers"] = PROBLEM_HEADERS[status]
    return responses


api = APIBlueprint("api", __name__, url_prefix=PREFIX,
                   # Any operation may meet validation, the edge's limits (nginx/*.conf) or
                   # a dependency down.
                   abp_responses=problems(400, 408, 413, 414, 422, 429, 431, 503),
                   operation_id_callback=lambda name, path, method: name)

# OpenAPI links: which operations an answer's values lead to (operation id: parameters),
# so that a client, and the stateful phase of `make api-fuzz`, can chain real names, ids,
# entity tags and cursors. Added to the document by `complete_document`.
_USERNAME = {"path.username": "$response.body#/username"}
_NAMED_USER = {"GetUser": ("get_user", _USERNAME), "Followers": ("followers", _USERNAME),
               "Following": ("following", _USERNAME), "UserTweets": ("user_tweets", _USERNAME),
               "Follow": ("follow", _USERNAME), "Unfollow": ("unfollow", _USERNAME)}
_TWEET = {"path.id": "$response.body#/id"}
_AUTHOR = {"path.username": "$response.body#/author/username"}
_NEXT_PAGE = {"path.username": "$request.path.username",
              "query.cursor": "$response.body#/next_cursor"}
LINKS: dict[str, dict[int, dict[str, tuple[str, dict[str, str]]]]] = {
    "register": {201: _NAMED_USER},
    "get_user": {200: {**_NAMED_USER, "GetUserIfChanged": ("get_user", {
        **_USERNAME, "header.If-None-Match": "$response.header.ETag"})}},
    "update_me": {200: {"GetUser": ("get_user", _USERNAME), "UpdateMeAgain": (
        "update_me", {"header.If-Match": "$response.header.ETag"})}},
    "post_tweet": {201: {"GetTweet": ("get_tweet", _TWEET), "DeleteTweet": ("delete_tweet", _TWEET),
                         "AuthorTweets": ("user_tweets", _AUTHOR)}},
    "get_tweet": {200: {"DeleteTweet": ("delete_tweet", _TWEET), "Author": ("get_user", _AUTHOR),
                        "GetTweetIfChanged": ("get_tweet", {
                            **_TWEET, "header.If-None-Match": "$response.header.ETag"})}},
    **{op: {200: {"NextPage": (op, _NEXT_PAGE)}} for op in ("followers", "following",
                                                              "user_tweets")},
    "home_timeline": {200: {"NextPage": ("home_timeline", {
        "query.cursor": "$response.body#/next_cursor"})}},
}


def complete_document(paths: dict[str, Any]) -> None:
    """What the document (flask-openapi3 PathItems) does not say by itself: the `LINKS`
    between operations, and that an optional parameter is absent, never null."""
    for item in paths.values():
        for method in ("get", "post", "put", "patch", "delete"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            for parameter in operation.parameters or []:
                parameter.param_schema = _never_null(parameter.param_schema)
            for status, links in LINKS.get(operation.operationId, {}).items():
                operation.responses[str(status)].links = {
                    name: Link(operationId=target, parameters=parameters)
                    for name, (target, parameters) in links.items()}


def _never_null(schema: Any) -> Any:
    """A parameter's schema without the `null` pydantic gives an Optional field: a header
    or a query parameter is a string or not there (`anyOf: [X, null]` becomes X)."""
    if not isinstance(schema, Schema) or not schema.anyOf:
        return schema
    kept = [s for s in schema.anyOf if not (isinstance(s, Schema) and s.type == "null")]
    if len(kept) != 1 or not isinstance(kept[0], Schema):
        return schema
    outer = schema.model_dump(by_alias=True, exclude_unset=True, exclude={"anyOf"})
    if outer.get("default") is None:
        outer.pop("default", None)
    return Schema.model_validate({**outer, **kept[0].model_dump(by_alias=True, exclude_unset=True)})


# Endpoints that need a bearer token; checked before request validation, so a caller
# without a valid token learns that first (401), whatever else is wrong with the request.
PROTECTED: set[str] = set()


class UsernameConverter(BaseConverter):
    """A path segment naming a user; never `me`, which always means the caller.

    Without it `/users/me` would also match `/users/<username>`, and Flask would advertise
    that route's methods (GET) for `/users/me` in Allow.
    """

    regex = r"(?:[^/m][^/]*|m|m[^/e][^/]*|me[^/]+)"  # any segment but "me"


def authenticated(view: Callable) -> Callable:
    """Mark a view as needing a bearer token (see `PROTECTED`)."""
    PROTECTED.add(f"{api.name}.{view.__name__}")
    return view


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; Unauthenticated otherwise."""
    if not authorization:
        raise Unauthenticated("This operation needs an access token.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Use 'Authorization: Bearer <token>'.")
    return token.strip()


@api.before_request
def _authenticate() -> None:
    if request.method != "OPTIONS" and request.endpoint in PROTECTED:
        g.principal = handlers.authenticate(
            ports(), bearer_token(request.headers.get("Authorization")))


# The one media type of request bodies, and the header that names it on a 415, by method
# (Accept-Post: W3C LDP; Accept-Patch: RFC 5789).
JSON = "application/json"
ACCEPT_HEADERS = {"POST": "Accept-Post", "PATCH": "Accept-Patch"}


@functools.cache
def takes_json_body(endpoint: str) -> bool:
    """Whether the view of `endpoint` is given a request body (a `body` model)."""
    view = current_app.view_functions.get(endpoint)
    return view is not None and "body" in inspect.signature(view).parameters


@api.before_request
def _require_json() -> None:
    # After authentication (401 first), before validation: a body sent as another type,
    # or without a Content-Type, is not a body with invalid fields (422).
    if (request.method in ("POST", "PUT", "PATCH") and request.endpoint
            and takes_json_body(request.endpoint) and request.mimetype != JSON):
        sent = f"not {request.mimetype}" if request.mimetype else "no Content-Type was sent"
        accept = ACCEPT_HEADERS.get(request.method)
        raise Problem(415, f"The body must be JSON, sent with Content-Type: {JSON} ({sent}).",
                      headers={accept: JSON} if accept else None)


def ports() -> Ports:
    service: Service = current_app.extensions["gateway"]
    return service.ports


def caller() -> Principal:
    return g.principal


def answer(result: Result, status: int = 200, *, tag_body: bool = False) -> Response:
    """The result's body as JSON, with its entity tag (ETag) and degradation marker.

    The tag is the peer's (`result.version`); failing that, with `tag_body`, a strong tag
    made from the body's bytes. A GET or HEAD of a tagged answer is conditional.
    """
    resp = jsonify(result.body)
    resp.status_code = status
    if result.version:
        resp.headers["ETag"] = result.version
    elif tag_body:
        resp.headers["ETag"] = f'"{hashlib.sha256(resp.get_data()).hexdigest()[:20]}"'
    if result.degraded:
        resp.headers["Murmur-Degraded"] = result.degraded
    if request.method in ("GET", "HEAD") and "ETag" in resp.headers:
        return conditional(resp)
    return resp


def conditional(resp: Response) -> Response:
    """A tagged read answer under the request's If-Match and If-None-Match (RFC 9110
    §13.2.2, `common.preconditions`): 412 when If-Match names none of its tags, a 304
    without a body when If-None-Match names it, else the answer itself."""
    etag = resp.headers["ETag"]
    outcome = preconditions.evaluate_read(request.headers.get("If-Match"),
                                          request.headers.get("If-None-Match"), etag)
    if outcome == preconditions.PRECONDITION_FAILED:
        raise Problem(412, "If-Match names none of this representation's entity tags.",
                      headers={"ETag": etag})
    if outcome == preconditions.NOT_MODIFIED:
        # What the 200 would have carried about the representation, without the body.
        kept = Response(status=304)
        del kept.headers["Content-Type"]
        for name in ("ETag", "Murmur-Degraded"):
            if name in resp.headers:
                kept.headers[name] = resp.headers[name]
        return kept
    return resp


def no_content() -> Response:
    return Response(status=204)


# ---------------------------------------------------------------------------- accounts


def client_address() -> str | None:
    """The caller's address: the one the edge appended to X-Forwarded-For (the last entry;
    earlier ones are the client's own claims), else the connection's peer."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    return forwarded.rsplit(",", 1)[-1].strip() or request.remote_addr


@api.post("/users", tags=[ACCOUNTS], responses=problems(409, 413, 415, 422, _201=User))
def register(header: SignupIdempotencyHeader, body: NewUser) -> Response:
    """Create an account. Send an Idempotency-Key to make a retry safe: a repeat with the
    same key and username answers 201 with the account the first request made (even if
    the first answer was lost or was a 503), never 409; the same key with another username
    is a 422. Without a key, a 503 may hide an account that was made: signing in tells."""
    return answer(handlers.register_user(ports(), body.model_dump(exclude_none=True),
                                         header.idempotency_key, client_address()), 201)


@api.post("/sessions", tags=[ACCOUNTS], responses=problems(401, 413, 415, 422, _200=Session))
def sign_in(body: Credentials) -> Response:
    """Exchange a username and password for an access token. Failed attempts are
    throttled per account and per address: past the limit, 429 with Retry-After."""
    return answer(handlers.open_session(ports(), body.model_dump(), client_address()))


@api.get("/users/<username:username>", tags=[ACCOUNTS],
         responses=problems(404, 405, 412, 422, _200=User, _304=NOT_MODIFIED))
def get_user(path: UserPath, header: ReadConditionHeaders) -> Response:
    """A user's public profile, with a strong ETag.

    The ETag changes whenever the body does: an edit, and also a follow that moves the
    counts. Send it back in If-None-Match to get a 304 without a body while nothing
    changed. `me` names no user: `/users/me` is your own profile, which is only edited
    (405)."""
    return answer(handlers.show_user(ports(), path.username))


@api.patch("/users/me", tags=[ACCOUNTS], security=BEARER,
           responses=problems(401, 404, 412, 413, 415, 422, 428, _200=User))
@authenticated
def update_me(header: IfMatchHeader, body: ProfileChanges) -> Response:
    """Change your display name or bio; send the ETag you read as If-Match.

    If-Match may also list several entity tags, or be `*`. The edit is conditional on
    the profile version the ETag was read at, checked and applied atomically: 412 when
    the display name or bio changed since, but not when only the follower counts did
    (the ETag moved, the profile you edit did not). 428 when If-Match is missing, empty
    or not a list of entity tags (such a header is ignored, which would leave the edit
    unconditional)."""
    if preconditions.tags(header.if_match) is None:
        raise Problem(428, preconditions.missing_detail(header.if_match))
    return answer(handlers.update_profile(ports(), caller(),
                                          body.model_dump(exclude_unset=True), header.if_match))


# -------------------------------------------------------------------------------- graph


@api.put("/users/me/following/<username>", tags=[GRAPH], security=BEARER,
         responses=problems(401, 404, 422, _204=None))
@authenticated
def follow(path: UserPath) -> Response:
    """Follow a user (following twice changes nothing). You cannot follow yourself, by
    your username or as `me`: 422."""
    handlers.follow(ports(), caller(), path.username)
    return no_content()


@api.delete("/users/me/following/<username>", tags=[GRAPH], security=BEARER,
            responses=problems(401, 404, 422, _204=None))
@authenticated
def unfollow(path: UserPath) -> Response:
    """Stop following a user (idempotent)."""
    handlers.unfollow(ports(), caller(), path.username)
    return no_content()


@api.get("/users/<username:username>/followers", tags=[GRAPH],
         responses=problems(404, 422, _200=UserPage))
def followers(path: UserPath, query: PageQuery) -> Response:
    """Who follows a user."""
    return answer(handlers.list_relations(ports(), path.username, "followers", query.limit,
                                          query.cursor))


@api.get("/users/<username:username>/following", tags=[GRAPH],
         responses=problems(404, 422, _200=UserPage))
def following(path: UserPath, query: PageQuery) -> Response:
    """Whom a user follows."""
    return answer(handlers.list_relations(ports(), path.username, "following", query.limit,
                                          query.cursor))


# ------------------------------------------------------------------------------- tweets


@api.post("/tweets", tags=[TWEETS], security=BEARER,
          responses=problems(401, 409, 413, 415, 422, _201=Tweet))
@authenticated
def post_tweet(header: IdempotencyHeader, body: NewTweet) -> Response:
    """Post a tweet; repeat it with the same Idempotency-Key to get the same tweet back.

    A repeat answers 409 while the first request with its key is still in progress (with
    Retry-After), or once the tweet it made has been deleted; 422 if it has other text."""
    return answer(handlers.post_tweet(ports(), caller(), body.text, header.idempotency_key), 201)


@api.get("/tweets/<id>", tags=[TWEETS],
         responses=problems(404, 412, 422, _200=Tweet, _304=NOT_MODIFIED))
def get_tweet(path: TweetPath, header: ReadConditionHeaders) -> Response:
    """One tweet, with a strong ETag.

    The ETag changes whenever the body does (its author's display name may). Send it
    back in If-None-Match to get a 304 without a body while nothing changed."""
    return answer(handlers.show_tweet(ports(), str(path.id)), tag_body=True)


@api.delete("/tweets/<id>", tags=[TWEETS], security=BEARER,
            responses=problems(401, 403, 404, 422, _204=None))
@authenticated
def delete_tweet(path: TweetPath) -> Response:
    """Delete one of your tweets; it leaves every timeline it reached.

    Deleting it again (a retry after a lost answer) answers 204 again for a day after the
    first delete; to anyone but its author, and after that day, a deleted tweet is a 404."""
    handlers.delete_tweet(ports(), caller(), str(path.id))
    return no_content()


@api.get("/users/<username:username>/tweets", tags=[TWEETS],
         responses=problems(404, 422, _200=TweetPage))
def user_tweets(path: UserPath, query: PageQuery) -> Response:
    """A user's tweets, newest first."""
    return answer(handlers.user_tweets(ports(), path.username, query.limit, query.cursor))


@api.get("/timeline", tags=[TWEETS], security=BEARER,
         responses=problems(401, 422, _200=TweetPage))
@authenticated
def home_timeline(query: PageQuery) -> Response:
    """Your home timeline: tweets of the people you follow and your own, newest first."""
    return answer(handlers.home_timeline(ports(), caller(), query.limit, query.cursor))


# --------------------------------------------------------------------------------- meta


@api.get("/openapi.json", tags=[META], responses={200: OpenAPIDocument})
def openapi_document() -> Response:
    """The OpenAPI 3 description of this API."""
    return jsonify(current_app.api_doc)  # type: ignore[attr-defined]


@api.get("/.well-known/jwks.json", tags=[META], responses={200: JsonWebKeySet})
def signing_keys() -> Response:
    """The public keys that sign access tokens, as a JWK Set: verify a token with the key
    its `kid` header names. A new key is listed here before it signs; an old one stays
    while tokens it signed may still be valid."""
    resp = jsonify(handlers.publish_signing_keys(ports()))
    service: Service = current_app.extensions["gateway"]
    resp.headers["Cache-Control"] = f"public, max-age={service.config.jwks_max_age}"
    return resp


# ------------------------------------------------------------------------------- system


def status_board() -> StatusBoard:
    """This worker's status board (made on first use: one per worker, like its pools)."""
    board = current_app.extensions.get("gateway_status")
    if board is None:
        service: Service = current_app.extensions["gateway"]
        board = current_app.extensions.setdefault("gateway_status", StatusBoard(
            service.ports.status, max_age=service.config.status_max_age))
    return board


@api.get("/system/status", tags=[SYSTEM], responses={200: SystemStatus})
def system_status_summary() -> Response:
    """The system's state: each service, worker and store coloured by health, each circuit
    breaker's state, the pipeline's lags and backlog, and each cache's hit ratio.

    Read-only and public: states and numbers, never an address. Each gateway worker reads
    the processes at most once per couple of seconds and answers everyone from that
    reading, so asking often costs the system nothing more. Recent figures (fan-out lag,
    cache hit ratios) cover the last minute of readings. nginx shows `up` when the request
    came through it."""
    service: Service = current_app.extensions["gateway"]
    # The edge forwards every request with the scheme the client used.
    via_edge = "X-Forwarded-Proto" in request.headers
    resp = jsonify(system_status(status_board(), via_edge))
    resp.headers["Cache-Control"] = f"max-age={max(0, int(service.config.status_max_age))}"
    return resp
