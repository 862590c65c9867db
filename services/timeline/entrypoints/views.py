"""HTTP routes of the timeline service: parse the request, call one handler, render.

Everything about HTTP is here: headers (X-User-Id, Murmur-Username, Idempotency-Key),
paths, page sizes and cursors; the handlers get plain values.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, request

from common import cursors, rules, tracing
from common.problems import Problem, not_found
from timeline.domain.commands import DeleteTweet, PostTweet
from timeline.domain.model import Author, AuthoredTweet, Page, iso
from timeline.service_layer import handlers
from timeline.service_layer.ports import Ports

bp = Blueprint("timeline", __name__)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_BACKFILL_IDS = 800  # a home timeline holds 800 entries: a backfill needs no more
USER_TWEETS, HOME = "user-tweets", "home"  # the kinds of cursor this service issues
# The caller (the gateway) names the user in X-User-Id, and their username, from the same
# verified token, in Murmur-Username.
USER_ID_HEADER, USERNAME_HEADER = "X-User-Id", "Murmur-Username"


def ports() -> Ports:
    return current_app.extensions["timeline"].ports


# ---------------------------------------------------------------------------- rendering


def render_author(author: Author) -> dict:
    """An author: id as a string; username and display_name null while not yet known."""
    return {"id": str(author.id), "username": author.username,
            "display_name": author.display_name}


def render_tweet(item: AuthoredTweet) -> dict:
    """A tweet as internal JSON: ids as strings, created_at ISO-8601 UTC, its author."""
    tweet = item.tweet
    return {"id": str(tweet.id), "author": render_author(item.author), "text": tweet.text,
            "created_at": iso(tweet.created_at)}


def page_cursors() -> cursors.Cursors:
    """The codec of this app's page cursors (made by `create_app` from the shared key)."""
    return current_app.extensions["cursors"]


def render_page(page: Page, kind: str, owner: int) -> Response:
    """A page of tweets with the cursor of the next page of the list `kind` of `owner` (an
    author's tweets, or a user's home timeline)."""
    cursor = (page_cursors().encode(kind, owner, page.last_id) if page.last_id is not None
              else None)
    resp = jsonify(items=[render_tweet(item) for item in page.items], next_cursor=cursor)
    if page.degraded:
        resp.headers["Murmur-Degraded"] = ", ".join(page.degraded)
    return resp


# ------------------------------------------------------------------------------ parsing


def current_user() -> int:
    """The caller set by the gateway in X-User-Id; 401 without a valid one."""
    user_id = rules.parse_id(request.headers.get(USER_ID_HEADER, ""))
    if user_id is None:
        raise Problem(401, f"{USER_ID_HEADER} is missing or not a user id.")
    return user_id


def current_username() -> str | None:
    """The caller's username from Murmur-Username, if it could be one."""
    name = request.headers.get(USERNAME_HEADER)
    return name if rules.is_username(name) else None


def path_id(raw: str, what: str) -> int:
    value = rules.parse_id(raw)
    if value is None:
        raise not_found(f"{what} {raw} does not exist.")
    return value


def page_size(default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    """The `limit` query parameter; 422 unless an integer within 1..maximum."""
    raw = request.args.get("limit")
    if raw is None:
        return default
    value = int(raw) if raw.isascii() and raw.isdigit() else 0
    if not 1 <= value <= maximum:
        raise rules.InvalidInput([rules.field_error("limit", f"must be 1 to {maximum}")])
    return value


def position(kind: str, owner: int) -> int | None:
    """The tweet id a page of the list `kind` of `owner` continues below, from the `cursor`
    parameter (None: first page); InvalidCursor for a cursor of any other list."""
    cursor = request.args.get("cursor")
    return None if cursor is None else page_cursors().decode(kind, owner, cursor, 1)[0]


def idempotency_key() -> str | None:
    """The Idempotency-Key header, if any (the shared rule: 422 when it breaks it)."""
    return rules.idempotency_key(request.headers.get("Idempotency-Key"))


def event_headers() -> dict[str, str]:
    """What an event written by this request carries: its request id and trace context."""
    request_id = g.get("request_id", "")
    return {**({"request_id": request_id} if request_id else {}),
            **tracing.current_trace_headers()}


# ------------------------------------------------------------------------------- routes


@bp.post("/tweets")
def post_tweet() -> tuple[Response, int]:
    author_id = current_user()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise rules.InvalidInput([rules.field_error("body", "must be a JSON object")],
                                 "The body must be a JSON object.")
    item = handlers.post_tweet(PostTweet(
        author_id=author_id, text=body.get("text"), idempotency_key=idempotency_key(),
        author_username=current_username(), event_headers=event_headers()), ports())
    resp = jsonify(render_tweet(item))
    resp.headers["Location"] = f"/tweets/{item.tweet.id}"
    return resp, 201


@bp.get("/tweets/<raw_id>")
def get_tweet(raw_id: str) -> Response:
    return jsonify(render_tweet(handlers.show_tweet(path_id(raw_id, "Tweet"), ports())))


@bp.delete("/tweets/<raw_id>")
def delete_tweet(raw_id: str) -> tuple[str, int]:
    requester = current_user()
    handlers.delete_tweet(DeleteTweet(path_id(raw_id, "Tweet"), requester, event_headers()),
                          ports())
    return "", 204


@bp.get("/authors/<raw_id>/tweets")
def author_tweets(raw_id: str) -> Response:
    author_id = path_id(raw_id, "Author")
    page = handlers.list_user_tweets(author_id, page_size(), position(USER_TWEETS, author_id),
                                     ports())
    return render_page(page, USER_TWEETS, author_id)


@bp.get("/authors/by-username/<path:username>/tweets")
def username_tweets(username: str) -> Response:
    # <path:...>: a name with a slash in it is "No such user." too, not a missing route.
    limit = page_size()
    # The author's cursors are bound to their id: the same by name as by id.
    author_id = handlers.find_author_named(username, ports())
    page = handlers.list_user_tweets(author_id, limit, position(USER_TWEETS, author_id), ports())
    return render_page(page, USER_TWEETS, author_id)


@bp.get("/timeline")
def home_timeline() -> Response:
    user_id = current_user()
    page = handlers.show_home_timeline(user_id, page_size(), position(HOME, user_id), ports())
    return render_page(page, HOME, user_id)


@bp.get("/internal/authors/<raw_id>/tweet-ids")
def author_tweet_ids(raw_id: str) -> Response:
    author_id = path_id(raw_id, "Author")
    limit = page_size(default=MAX_BACKFILL_IDS, maximum=MAX_BACKFILL_IDS)
    ids = handlers.list_author_tweet_ids(author_id, limit, ports())
    return jsonify(ids=[str(i) for i in ids])
