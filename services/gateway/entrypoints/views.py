"""The public API under /api/v1: parse the request, run one use case, render its result."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Callable

from flask import Response, current_app, g, jsonify, request
from flask_openapi3 import APIBlueprint, Tag
from werkzeug.routing import BaseConverter

from common.service import Service

from gateway.domain.errors import Unauthenticated
from gateway.domain.model import Principal, Result
from gateway.entrypoints.schemas import (
    Credentials, IdempotencyHeader, IfMatchHeader, NewTweet, NewUser, OpenAPIDocument,
    PageQuery, ProfileChanges, Session, Tweet, TweetPage, TweetPath, User, UserPage, UserPath,
)
from gateway.service_layer import handlers
from gateway.service_layer.ports import Ports

PREFIX = "/api/v1"
PROBLEM_REF = "#/components/schemas/ProblemDetails"
BEARER = [{"bearerAuth": []}]

ACCOUNTS, GRAPH, TWEETS, META = (Tag(name="accounts", description="Sign-up, sign-in, profiles"),
                                 Tag(name="graph", description="Who follows whom"),
                                 Tag(name="tweets", description="Posting and reading tweets"),
                                 Tag(name="meta", description="This API's description"))


def problems(*statuses: int, **ok: Any) -> dict[Any, Any]:
    """OpenAPI responses: `ok` as given (e.g. `_201=User`) plus problem+json for `statuses`."""
    responses: dict[Any, Any] = {int(k.lstrip("_")): v for k, v in ok.items()}
    for status in statuses:
        responses[status] = {
            "description": HTTPStatus(status).phrase,
            "content": {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}},
        }
        if status in (429, 503):
            responses[status]["headers"] = {"Retry-After": {
                "description": "Seconds to wait before trying again", "required": True,
                "schema": {"type": "integer", "minimum": 0}}}
    return responses


api = APIBlueprint("api", __name__, url_prefix=PREFIX,
                   # Any operation may meet validation, nginx's limits or a dependency down.
                   abp_responses=problems(414, 422, 429, 503),
                   operation_id_callback=lambda name, path, method: name)

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


def ports() -> Ports:
    service: Service = current_app.extensions["gateway"]
    return service.ports


def caller() -> Principal:
    return g.principal


def answer(result: Result, status: int = 200) -> Response:
    """The result's body as JSON, with its version (ETag) and degradation marker."""
    resp = jsonify(result.body)
    resp.status_code = status
    if result.version:
        resp.headers["ETag"] = result.version
    if result.degraded:
        resp.headers["Murmur-Degraded"] = result.degraded
    return resp


def no_content() -> Response:
    return Response(status=204)


# ---------------------------------------------------------------------------- accounts


@api.post("/users", tags=[ACCOUNTS], responses=problems(409, 413, 422, _201=User))
def register(body: NewUser) -> Response:
    """Create an account."""
    return answer(handlers.register_user(ports(), body.model_dump(exclude_none=True)), 201)


@api.post("/sessions", tags=[ACCOUNTS], responses=problems(401, 413, 422, _200=Session))
def sign_in(body: Credentials) -> Response:
    """Exchange a username and password for an access token."""
    return answer(handlers.open_session(ports(), body.model_dump()))


@api.get("/users/<username:username>", tags=[ACCOUNTS], responses=problems(404, 422, _200=User))
def get_user(path: UserPath) -> Response:
    """A user's public profile, with its version as the ETag."""
    return answer(handlers.show_user(ports(), path.username))


@api.patch("/users/me", tags=[ACCOUNTS], security=BEARER,
           responses=problems(401, 404, 412, 413, 422, 428, _200=User))
@authenticated
def update_me(header: IfMatchHeader, body: ProfileChanges) -> Response:
    """Change your display name or bio; send the ETag you read as If-Match."""
    return answer(handlers.update_profile(ports(), caller(),
                                          body.model_dump(exclude_unset=True), header.if_match))


# -------------------------------------------------------------------------------- graph


@api.put("/users/me/following/<username:username>", tags=[GRAPH], security=BEARER,
         responses=problems(401, 404, 422, _204=None))
@authenticated
def follow(path: UserPath) -> Response:
    """Follow a user (following twice changes nothing)."""
    handlers.follow(ports(), caller(), path.username)
    return no_content()


@api.delete("/users/me/following/<username:username>", tags=[GRAPH], security=BEARER,
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
          responses=problems(401, 413, 422, _201=Tweet))
@authenticated
def post_tweet(header: IdempotencyHeader, body: NewTweet) -> Response:
    """Post a tweet; repeat it with the same Idempotency-Key to get the same tweet back."""
    return answer(handlers.post_tweet(ports(), caller(), body.text, header.idempotency_key), 201)


@api.get("/tweets/<id>", tags=[TWEETS], responses=problems(404, 422, _200=Tweet))
def get_tweet(path: TweetPath) -> Response:
    """One tweet."""
    return answer(handlers.show_tweet(ports(), str(path.id)))


@api.delete("/tweets/<id>", tags=[TWEETS], security=BEARER,
            responses=problems(401, 403, 404, 422, _204=None))
@authenticated
def delete_tweet(path: TweetPath) -> Response:
    """Delete one of your tweets; it leaves every timeline it reached."""
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
