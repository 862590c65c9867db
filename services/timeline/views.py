"""HTTP routes of the timeline service: parse, call a handler, render."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, request

from common.problems import Problem, not_found
from timeline import domain
from timeline.domain import Page, Ports, Tweet

bp = Blueprint("timeline", __name__)


def ports() -> Ports:
    return current_app.extensions["timeline"].ports


def render_tweet(tweet: Tweet) -> dict:
    """A tweet as internal JSON: ids as strings, created_at ISO-8601 UTC."""
    return {"id": str(tweet.id), "author_id": str(tweet.author_id), "text": tweet.text,
            "created_at": domain.iso(tweet.created_at)}


def render_page(page: Page) -> Response:
    resp = jsonify(items=[render_tweet(t) for t in page.items], next_cursor=page.next_cursor)
    if page.degraded:
        resp.headers["Murmur-Degraded"] = page.degraded
    return resp


def current_user() -> int:
    """The caller set by the gateway in X-User-Id; 401 without a valid one."""
    user_id = domain.parse_id(request.headers.get("X-User-Id", ""))
    if user_id is None:
        raise Problem(401, "X-User-Id is missing or not a user id.")
    return user_id


def path_id(raw: str, what: str) -> int:
    value = domain.parse_id(raw)
    if value is None:
        raise not_found(f"{what} {raw} does not exist.")
    return value


@bp.post("/tweets")
def post_tweet() -> tuple[Response, int]:
    author_id = current_user()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Problem(422, "The body must be a JSON object.",
                      errors=[{"field": "body", "message": "must be a JSON object"}])
    tweet = domain.post_tweet(domain.PostTweet(
        author_id=author_id, text=body.get("text"),
        idempotency_key=request.headers.get("Idempotency-Key"),
        request_id=g.get("request_id", "")), ports())
    resp = jsonify(render_tweet(tweet))
    resp.headers["Location"] = f"/tweets/{tweet.id}"
    return resp, 201


@bp.get("/tweets/<raw_id>")
def get_tweet(raw_id: str) -> Response:
    return jsonify(render_tweet(domain.get_tweet(path_id(raw_id, "Tweet"), ports())))


@bp.delete("/tweets/<raw_id>")
def delete_tweet(raw_id: str) -> tuple[str, int]:
    requester = current_user()
    domain.delete_tweet(domain.DeleteTweet(path_id(raw_id, "Tweet"), requester), ports())
    return "", 204


@bp.get("/authors/<raw_id>/tweets")
def author_tweets(raw_id: str) -> Response:
    author_id = path_id(raw_id, "Author")
    limit = domain.parse_limit(request.args.get("limit"))
    before = domain.decode_cursor(request.args.get("cursor"))
    return render_page(domain.read_author_tweets(author_id, limit, before, ports()))


@bp.get("/timeline")
def home_timeline() -> Response:
    user_id = current_user()
    limit = domain.parse_limit(request.args.get("limit"))
    before = domain.decode_cursor(request.args.get("cursor"))
    return render_page(domain.read_home_timeline(user_id, limit, before, ports()))


@bp.get("/internal/authors/<raw_id>/tweet-ids")
def author_tweet_ids(raw_id: str) -> Response:
    author_id = path_id(raw_id, "Author")
    limit = domain.parse_limit(request.args.get("limit"), default=domain.MAX_BACKFILL_IDS,
                               maximum=domain.MAX_BACKFILL_IDS)
    ids = domain.author_tweet_ids(author_id, limit, ports())
    return jsonify(ids=[str(i) for i in ids])
