"""The public API under /api/v1: parse input, call a downstream, render the answer."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Callable

from flask import Response, current_app, g, jsonify, request
from flask_openapi3 import APIBlueprint, Tag
from werkzeug.routing import BaseConverter

from gateway import domain
from gateway.auth import Principal
from gateway.bootstrap import Gateway
from gateway.schemas import (
    Credentials, IdempotencyHeader, IfMatchHeader, NewTweet, NewUser, OpenAPIDocument,
    PageQuery, ProfileChanges, Session, Tweet, TweetPage, TweetPath, User, UserPage, UserPath,
)

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


@api.before_request
def _authenticate() -> None:
    if request.method != "OPTIONS" and request.endpoint in PROTECTED:
        g.principal = gateway().tokens.authenticate(request.headers.get("Authorization"))


def gateway() -> Gateway:
    return current_app.extensions["gateway"]


def principal() -> Principal:
    return g.principal


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    resp = jsonify(body)
    resp.status_code = status
    resp.headers.update(headers or {})
    return resp


def no_content() -> Response:
    return Response(status=204)


# ---------------------------------------------------------------------------- accounts


@api.post("/users", tags=[ACCOUNTS], responses=problems(409, 413, 422, _201=User))
def register(body: NewUser) -> Response:
    """Create an account."""
    reply = gateway().users.register(body.model_dump(exclude_none=True))
    return answer(domain.public_user(reply.body), 201, reply.passed_headers())


@api.post("/sessions", tags=[ACCOUNTS], responses=problems(401, 413, 422, _200=Session))
def sign_in(body: Credentials) -> Response:
    """Exchange a username and password for an access token."""
    reply = gateway().users.open_session(body.model_dump())
    return answer(reply.body)


@api.get("/users/<username:username>", tags=[ACCOUNTS], responses=problems(404, 422, _200=User))
def get_user(path: UserPath) -> Response:
    """A user's public profile, with its version as the ETag."""
    reply = gateway().users.by_username(path.username)
    return answer(domain.public_user(reply.body), headers=reply.passed_headers())


@api.patch("/users/me", tags=[ACCOUNTS], security=BEARER,
           responses=problems(401, 404, 412, 413, 422, 428, _200=User))
@authenticated
def update_me(header: IfMatchHeader, body: ProfileChanges) -> Response:
    """Change your display name or bio; send the ETag you read as If-Match."""
    reply = gateway().users.update(principal().user_id, body.model_dump(exclude_unset=True),
                                   header.if_match)
    return answer(domain.public_user(reply.body), headers=reply.passed_headers())


# -------------------------------------------------------------------------------- graph


@api.put("/users/me/following/<username:username>", tags=[GRAPH], security=BEARER,
         responses=problems(401, 404, 422, _204=None))
@authenticated
def follow(path: UserPath) -> Response:
    """Follow a user (following twice changes nothing)."""
    gateway().users.follow(principal().user_id, path.username)
    return no_content()


@api.delete("/users/me/following/<username:username>", tags=[GRAPH], security=BEARER,
            responses=problems(401, 404, 422, _204=None))
@authenticated
def unfollow(path: UserPath) -> Response:
    """Stop following a user (idempotent)."""
    gateway().users.unfollow(principal().user_id, path.username)
    return no_content()


@api.get("/users/<username:username>/followers", tags=[GRAPH],
         responses=problems(404, 422, _200=UserPage))
def followers(path: UserPath, query: PageQuery) -> Response:
    """Who follows a user."""
    return _relations(path.username, "followers", query)


@api.get("/users/<username:username>/following", tags=[GRAPH],
         responses=problems(404, 422, _200=UserPage))
def following(path: UserPath, query: PageQuery) -> Response:
    """Whom a user follows."""
    return _relations(path.username, "following", query)


def _relations(username: str, which: str, query: PageQuery) -> Response:
    reply = gateway().users.relations(username, which, query.limit, query.cursor)
    body = reply.body or {}
    users = [domain.public_user(u) for u in body.get("items", [])]
    return answer(domain.page(users, body.get("next_cursor")))


# ------------------------------------------------------------------------------- tweets


@api.post("/tweets", tags=[TWEETS], security=BEARER,
          responses=problems(401, 413, 422, _201=Tweet))
@authenticated
def post_tweet(header: IdempotencyHeader, body: NewTweet) -> Response:
    """Post a tweet; repeat it with the same Idempotency-Key to get the same tweet back."""
    gw = gateway()
    reply = gw.timeline.post(principal().user_id, body.text, header.idempotency_key)
    [tweet] = domain.hydrate([reply.body], gw.users)
    return answer(tweet, 201, reply.passed_headers())


@api.get("/tweets/<id>", tags=[TWEETS], responses=problems(404, 422, _200=Tweet))
def get_tweet(path: TweetPath) -> Response:
    """One tweet."""
    gw = gateway()
    reply = gw.timeline.get(str(path.id))
    [tweet] = domain.hydrate([reply.body], gw.users)
    return answer(tweet, headers=reply.passed_headers())


@api.delete("/tweets/<id>", tags=[TWEETS], security=BEARER,
            responses=problems(401, 403, 404, 422, _204=None))
@authenticated
def delete_tweet(path: TweetPath) -> Response:
    """Delete one of your tweets; it leaves every timeline it reached."""
    gateway().timeline.delete(principal().user_id, str(path.id))
    return no_content()


@api.get("/users/<username:username>/tweets", tags=[TWEETS],
         responses=problems(404, 422, _200=TweetPage))
def user_tweets(path: UserPath, query: PageQuery) -> Response:
    """A user's tweets, newest first."""
    gw = gateway()
    author = gw.users.by_username(path.username).body
    reply = gw.timeline.by_author(str(author["id"]), query.limit, query.cursor)
    body = reply.body or {}
    # Every tweet here has the same author, whom we already hold: no batch call needed.
    tweets = domain.attach_authors(body.get("items", []), {str(author["id"]): author})
    return answer(domain.page(tweets, body.get("next_cursor")), headers=reply.passed_headers())


@api.get("/timeline", tags=[TWEETS], security=BEARER,
         responses=problems(401, 422, _200=TweetPage))
@authenticated
def home_timeline(query: PageQuery) -> Response:
    """Your home timeline: tweets of the people you follow and your own, newest first."""
    gw = gateway()
    reply = gw.timeline.home(principal().user_id, query.limit, query.cursor)
    body = reply.body or {}
    tweets = domain.hydrate(body.get("items", []), gw.users)
    return answer(domain.page(tweets, body.get("next_cursor")), headers=reply.passed_headers())


# --------------------------------------------------------------------------------- meta


@api.get("/openapi.json", tags=[META], responses={200: OpenAPIDocument})
def openapi_document() -> Response:
    """The OpenAPI 3 description of this API."""
    return answer(current_app.api_doc)  # type: ignore[attr-defined]
