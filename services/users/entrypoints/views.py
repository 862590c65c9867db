"""HTTP endpoints of the users service: parse the request, run one use case, render JSON.

Query strings, cursors, identity and If-Match headers are parsed here; the handlers see
plain values and commands. Errors are raised as the domain's exceptions or InvalidInput
and answered by the mapping in `users.entrypoints.errors`.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from common import cursors, logs, preconditions, tracing
from common import rules
from common.rules import InvalidInput, field_error, parse_id
from common.service import Service
from users.domain.commands import (
    FollowUser,
    RegisterUser,
    StartSession,
    Trace,
    UnfollowUser,
    UpdateProfile,
)
from users.domain.errors import UserNotFound
from users.domain.model import Page, Position, Profile, User
from users.entrypoints import errors
from users.service_layer import handlers
from users.service_layer.ports import Ports

bp = Blueprint("users", __name__)

PAGE_DEFAULT, PAGE_MAX = 20, 100
IDS_PAGE_DEFAULT = 1000
# An entity tag of a profile, unquoted: "<version>-<digest>", the version in canonical
# decimal (never "01"), within Postgres' integer range (see `entity_tag`).
_TAG = re.compile(r"(0|[1-9][0-9]{0,9})-[0-9a-f]{12}")
MAX_VERSION = 2**31 - 1
DEGRADED = "Murmur-Degraded"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def service() -> Service:
    """The wired service of this app."""
    return current_app.extensions["users"]


def ports() -> Ports:
    """The use-case ports wired for this app."""
    return service().ports


# --------------------------------------------------------------------------- parsing


def json_body() -> dict[str, Any]:
    """The request body as a JSON object, else InvalidInput."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput([field_error("body", "must be a JSON object")])
    return body


def path_id(raw: str) -> int:
    """An id from the URL path; UserNotFound when it cannot be one (no such resource)."""
    user_id = parse_id(raw)
    if user_id is None:
        raise UserNotFound()
    return user_id


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], else InvalidInput."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if raw.isascii() and raw.isdigit() and low <= int(raw) <= high:
        return int(raw)
    raise InvalidInput([field_error(name, f"must be an integer {low}-{high}")])


def page_cursors() -> cursors.Cursors:
    """The codec of this app's page cursors (made by `create_app` from the shared key)."""
    return current_app.extensions["cursors"]


def encode_position(codec: cursors.Cursors, kind: str, username: str,
                    position: Position) -> str:
    """The cursor of `username`'s follow list `kind` ("followers" or "following") ending
    at `position`; it opens on that list only (usernames never change)."""
    micros = (position.followed_at - _EPOCH) // timedelta(microseconds=1)
    return codec.encode(kind, username, micros, position.user_id)


def decode_position(codec: cursors.Cursors, kind: str, username: str,
                    cursor: str) -> Position:
    """The position a cursor of `username`'s follow list `kind` stands for; InvalidCursor
    for any other cursor."""
    micros, user_id = codec.decode(kind, username, cursor, 2)
    try:
        followed_at = _EPOCH + timedelta(microseconds=micros)
    except OverflowError as exc:
        raise cursors.InvalidCursor("is not a cursor of this list") from exc
    return Position(followed_at, user_id)


def page_args(kind: str, username: str) -> tuple[Position | None, int]:
    """The keyset position and page size of a request for `username`'s follow list."""
    limit = int_arg("limit", PAGE_DEFAULT, 1, PAGE_MAX)
    cursor = request.args.get("cursor")
    return (decode_position(page_cursors(), kind, username, cursor) if cursor else None), limit


def acting_user(raw_id: str) -> int:
    """The path's user id, if the authenticated caller (X-User-Id) is that user."""
    caller = parse_id(request.headers.get("X-User-Id"))
    if caller is None:
        raise errors.authentication_required()
    if caller != parse_id(raw_id):
        raise errors.not_your_account()
    return caller


def tagged_version(opaque: str) -> int | None:
    """The profile version an entity tag of ours names (None: not a tag this service makes)."""
    match = _TAG.fullmatch(opaque)
    if match is None or int(match.group(1)) > MAX_VERSION:
        return None
    return int(match.group(1))


def expected_versions() -> frozenset[int] | None:
    """The profile versions If-Match names (None for "*"). 428 when it is missing, empty
    or no list of entity tags; 412 when none of its strong tags is a tag of this service."""
    header = request.headers.get("If-Match")
    listed = preconditions.tags(header)
    if listed is None:
        raise errors.if_match_required(preconditions.missing_detail(header))
    if listed.star_tag:
        return None
    # A weak tag never matches under the strong comparison If-Match uses; neither does a
    # tag this service never makes.
    versions = frozenset(version for tag in preconditions.strong_tags(listed)
                         if (version := tagged_version(tag)) is not None)
    if not versions:
        raise errors.if_match_unknown()
    return versions


def idempotency_key() -> str | None:
    """The Idempotency-Key header of a sign-up, if any (the shared rule: 422 when it breaks it)."""
    return rules.idempotency_key(request.headers.get("Idempotency-Key"))


def trace() -> Trace:
    """This request's propagation headers (request id, W3C trace context), stored with
    the events it causes so the relay that publishes them continues its trace."""
    rid = logs.request_id_var.get()
    return {**({"request_id": rid} if rid else {}), **tracing.current_trace_headers()}


# ------------------------------------------------------------------------- rendering


def iso(dt: datetime) -> str:
    """An ISO 8601 UTC timestamp with milliseconds, Z-suffixed."""
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def user_json(user: User) -> dict[str, Any]:
    """The public user representation."""
    return {"id": str(user.id), "username": user.username, "display_name": user.display_name,
            "bio": user.bio, "followers_count": user.followers_count,
            "following_count": user.following_count, "created_at": iso(user.created_at)}


def entity_tag(user: User) -> str:
    """The strong ETag of a user's representation: `"<version>-<digest of the body>"`.

    The digest moves with anything the body shows, the counts included, so a client
    revalidating with If-None-Match never keeps stale counts. The version is what an edit
    is conditional on: PATCH compares If-Match on it alone (`tagged_version`), since a
    follow between a read and an edit moves the counts, not what the edit changes, and
    must not fail it with 412.
    """
    body = json.dumps(user_json(user), sort_keys=True, separators=(",", ":"))
    return f'"{user.version}-{hashlib.sha256(body.encode()).hexdigest()[:12]}"'


def user_response(user: User, status: int = 200, degraded: str | None = None) -> Response:
    """A user with its ETag (`entity_tag`), and why it is degraded if it is."""
    resp = jsonify(user_json(user))
    resp.status_code = status
    resp.headers["ETag"] = entity_tag(user)
    if degraded:
        resp.headers[DEGRADED] = degraded
    return resp


def profile_response(profile: Profile) -> Response:
    """A profile as read, marked when it came from the cache alone."""
    return user_response(profile.user, degraded=profile.degraded)


def page_response(kind: str, username: str, page: Page) -> Response:
    """A page of `username`'s follow list `kind` with the cursor of the next page."""
    cursor = encode_position(page_cursors(), kind, username, page.next) if page.next else None
    return jsonify(items=[user_json(u) for u in page.users], next_cursor=cursor)


def no_content() -> Response:
    """An empty 204."""
    return Response(status=204)


# ------------------------------------------------------------------------ public API


@bp.post("/users")
def register() -> Response:
    body = json_body()
    user = handlers.register_user(RegisterUser(
        body.get("username"), body.get("password"), body.get("display_name"), trace(),
        idempotency_key=idempotency_key()), ports())
    resp = user_response(user, 201)
    resp.headers["Location"] = f"/users/{user.username}"
    return resp


@bp.post("/sessions")
def start_session() -> Response:
    body = json_body()
    session = handlers.start_session(StartSession(
        body.get("username"), body.get("password"),
        client=request.headers.get("Murmur-Client", "")[:64]), ports())
    resp = jsonify(access_token=session.access_token, token_type=session.token_type,
                   expires_in=session.expires_in)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/users/<username>")
def get_user(username: str) -> Response:
    return profile_response(handlers.show_user(username, ports()))


@bp.get("/users/by-id/<user_id>")
def get_user_by_id(user_id: str) -> Response:
    return profile_response(handlers.show_user_by_id(path_id(user_id), ports()))


@bp.patch("/users/<user_id>")
def update_profile(user_id: str) -> Response:
    uid = acting_user(user_id)
    versions = expected_versions()
    user = handlers.update_profile(UpdateProfile(uid, versions, json_body(), trace()), ports())
    return user_response(user)


@bp.put("/users/<user_id>/following/<username>")
def follow(user_id: str, username: str) -> Response:
    handlers.follow_user(FollowUser(acting_user(user_id), username, trace()), ports())
    return no_content()


@bp.delete("/users/<user_id>/following/<username>")
def unfollow(user_id: str, username: str) -> Response:
    handlers.unfollow_user(UnfollowUser(acting_user(user_id), username, trace()), ports())
    return no_content()


@bp.get("/users/<username>/followers")
def followers(username: str) -> Response:
    after, limit = page_args("followers", username)
    return page_response("followers", username,
                         handlers.list_followers(username, after, limit, ports()))


@bp.get("/users/<username>/following")
def following(username: str) -> Response:
    after, limit = page_args("following", username)
    return page_response("following", username,
                         handlers.list_following(username, after, limit, ports()))


# ---------------------------------------------------------------------- internal API


@bp.get("/internal/users/<user_id>/follower-ids")
def follower_ids(user_id: str) -> Response:
    uid = path_id(user_id)
    limit = int_arg("limit", IDS_PAGE_DEFAULT, 1, service().config.max_follower_ids_page)
    raw_after = request.args.get("after")
    after = None
    if raw_after:
        after = parse_id(raw_after)
        if after is None:
            raise InvalidInput([field_error("after", "must be a user id")])
    ids, next_after, count = handlers.page_follower_ids(uid, after, limit, ports())
    return jsonify(ids=[str(i) for i in ids],
                   next_after=str(next_after) if next_after is not None else None,
                   followers_count=count)


@bp.get("/internal/users/<user_id>/followee-ids")
def followee_ids(user_id: str) -> Response:
    uid = path_id(user_id)
    limit = int_arg("limit", IDS_PAGE_DEFAULT, 1, service().config.max_follower_ids_page)
    min_followers = int_arg("min_followers", 0, 0, 2**31 - 1)
    pulled = request.args.get("pulled", "false")
    if pulled not in ("true", "false"):
        raise InvalidInput([field_error("pulled", "must be true or false")])
    ids = handlers.list_followee_ids(uid, min_followers, limit, ports(), pulled == "true")
    return jsonify(ids=[str(i) for i in ids])
