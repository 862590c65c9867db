"""HTTP endpoints of the users service: parse the request, run a use case, render JSON."""

from __future__ import annotations

import re
from datetime import timezone
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from common.problems import Problem, validation_failed
from users import domain
from users.cursors import InvalidCursor, decode_cursor, encode_cursor
from users.domain import Ports, User

bp = Blueprint("users", __name__)

MAX_ID = (1 << 63) - 1
PAGE_DEFAULT, PAGE_MAX = 20, 100
IDS_PAGE_DEFAULT = 1000
_ETAG = re.compile(r'"(\d{1,9})"')
DEGRADED = "Murmur-Degraded"


def ports() -> Ports:
    """The use-case ports wired for this app."""
    return current_app.extensions["users"].ports


# --------------------------------------------------------------------------- parsing


def json_body() -> dict[str, Any]:
    """The request body as a JSON object, else 422."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise validation_failed([{"field": "body", "message": "must be a JSON object"}])
    return body


def parse_id(raw: Any) -> int | None:
    """A 64-bit id from its decimal string, or None if it is not one."""
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 19:
        value = int(raw)
        return value if 0 < value <= MAX_ID else None
    return None


def path_id(raw: str) -> int:
    """An id from the URL path; 404 when it cannot be one (no such resource)."""
    user_id = parse_id(raw)
    if user_id is None:
        raise domain.UserNotFound()
    return user_id


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], else 422."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if raw.isascii() and raw.isdigit() and low <= int(raw) <= high:
        return int(raw)
    raise validation_failed([{"field": name, "message": f"must be an integer {low}-{high}"}])


def page_args() -> tuple[domain.Position | None, int]:
    """The keyset position and page size of a list request."""
    limit = int_arg("limit", PAGE_DEFAULT, 1, PAGE_MAX)
    cursor = request.args.get("cursor")
    if not cursor:
        return None, limit
    try:
        return decode_cursor(cursor), limit
    except InvalidCursor:
        raise validation_failed([{"field": "cursor", "message": "is not a valid cursor"}])


def acting_user(raw_id: str) -> int:
    """The path's user id, if the authenticated caller (X-User-Id) is that user."""
    caller = parse_id(request.headers.get("X-User-Id"))
    if caller is None:
        raise Problem(401, "Authentication is required.",
                      headers={"WWW-Authenticate": "Bearer"})
    if caller != parse_id(raw_id):
        raise Problem(403, "You can only act on your own account.")
    return caller


def expected_version() -> int | None:
    """The version named by If-Match: 428 when absent, 412 when it names none we issue."""
    header = request.headers.get("If-Match")
    if header is None:
        raise Problem(428, "Send If-Match with the ETag you read, to avoid lost updates.")
    header = header.strip()
    if header == "*":
        return None
    match = _ETAG.fullmatch(header)
    if match is None:
        # A weak or foreign tag never matches under the strong comparison If-Match uses.
        raise Problem(412, "If-Match does not name a version of this profile.")
    return int(match.group(1))


# ------------------------------------------------------------------------- rendering


def iso(dt) -> str:
    """An ISO 8601 UTC timestamp with milliseconds, Z-suffixed."""
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def user_json(user: User) -> dict[str, Any]:
    """The public user representation."""
    return {"id": str(user.id), "username": user.username, "display_name": user.display_name,
            "bio": user.bio, "followers_count": user.followers_count,
            "following_count": user.following_count, "created_at": iso(user.created_at)}


def user_response(user: User, status: int = 200, degraded: str | None = None) -> Response:
    """A user with its ETag (the profile version), and why it is degraded if it is."""
    resp = jsonify(user_json(user))
    resp.status_code = status
    resp.headers["ETag"] = f'"{user.version}"'
    if degraded:
        resp.headers[DEGRADED] = degraded
    return resp


def profile_response(profile: domain.Profile) -> Response:
    """A profile as read, marked when it came from the cache alone."""
    return user_response(profile.user, degraded=profile.degraded)


def page_response(page: domain.Page) -> Response:
    """A page of users with the cursor of the next page."""
    return jsonify(items=[user_json(u) for u in page.users],
                   next_cursor=encode_cursor(page.next) if page.next else None)


def no_content() -> Response:
    """An empty 204."""
    return Response(status=204)


# ------------------------------------------------------------------------ public API


@bp.post("/users")
def register() -> Response:
    body = json_body()
    user = domain.register_user(domain.RegisterUser(
        body.get("username"), body.get("password"), body.get("display_name")), ports())
    resp = user_response(user, 201)
    resp.headers["Location"] = f"/users/{user.username}"
    return resp


@bp.post("/sessions")
def start_session() -> Response:
    body = json_body()
    session = domain.start_session(
        domain.StartSession(body.get("username"), body.get("password")), ports())
    resp = jsonify(access_token=session.access_token, token_type=session.token_type,
                   expires_in=session.expires_in)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/users/<username>")
def get_user(username: str) -> Response:
    return profile_response(domain.show_user(username, ports()))


@bp.get("/users/by-id/<user_id>")
def get_user_by_id(user_id: str) -> Response:
    return profile_response(domain.show_user_by_id(path_id(user_id), ports()))


@bp.patch("/users/<user_id>")
def update_profile(user_id: str) -> Response:
    uid = acting_user(user_id)
    version = expected_version()
    user = domain.update_profile(domain.UpdateProfile(uid, version, json_body()), ports())
    return user_response(user)


@bp.put("/users/<user_id>/following/<username>")
def follow(user_id: str, username: str) -> Response:
    domain.follow_user(domain.FollowUser(acting_user(user_id), username), ports())
    return no_content()


@bp.delete("/users/<user_id>/following/<username>")
def unfollow(user_id: str, username: str) -> Response:
    domain.unfollow_user(domain.UnfollowUser(acting_user(user_id), username), ports())
    return no_content()


@bp.get("/users/<username>/followers")
def followers(username: str) -> Response:
    after, limit = page_args()
    return page_response(domain.list_followers(username, after, limit, ports()))


@bp.get("/users/<username>/following")
def following(username: str) -> Response:
    after, limit = page_args()
    return page_response(domain.list_following(username, after, limit, ports()))


# ---------------------------------------------------------------------- internal API


@bp.get("/internal/users/<user_id>/follower-ids")
def follower_ids(user_id: str) -> Response:
    uid = path_id(user_id)
    max_page = current_app.extensions["users"].config.max_follower_ids_page
    limit = int_arg("limit", IDS_PAGE_DEFAULT, 1, max_page)
    raw_after = request.args.get("after")
    after = None
    if raw_after:
        after = parse_id(raw_after)
        if after is None:
            raise validation_failed([{"field": "after", "message": "must be a user id"}])
    ids, next_after, count = domain.page_follower_ids(uid, after, limit, ports())
    return jsonify(ids=[str(i) for i in ids],
                   next_after=str(next_after) if next_after is not None else None,
                   followers_count=count)


@bp.get("/internal/users/<user_id>/followee-ids")
def followee_ids(user_id: str) -> Response:
    uid = path_id(user_id)
    max_page = current_app.extensions["users"].config.max_follower_ids_page
    limit = int_arg("limit", IDS_PAGE_DEFAULT, 1, max_page)
    min_followers = int_arg("min_followers", 0, 0, 2**31 - 1)
    ids = domain.list_followee_ids(uid, min_followers, limit, ports())
    return jsonify(ids=[str(i) for i in ids])


@bp.post("/internal/users/batch")
def batch() -> Response:
    raw_ids = json_body().get("ids")
    most = current_app.extensions["users"].config.max_batch_ids
    if not isinstance(raw_ids, list) or len(raw_ids) > most:
        raise validation_failed([{"field": "ids", "message": f"must be a list of at most "
                                                             f"{most} user ids"}])
    ids = [parse_id(raw) for raw in raw_ids]
    if None in ids:
        raise validation_failed([{"field": "ids", "message": "every id must be a decimal string"}])
    found = domain.show_users(ids, ports())
    body: dict[str, Any] = {"users": {str(u.id): {"id": str(u.id), "username": u.username,
                                                  "display_name": u.display_name}
                                      for u in found.users.values()}}
    if found.degraded:
        body["unavailable"] = [str(i) for i in found.unavailable]
    resp = jsonify(body)
    if found.degraded:
        resp.headers[DEGRADED] = found.degraded
    return resp
