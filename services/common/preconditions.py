"""Conditional requests (RFC 9110 §13): entity tags and the If-Match and If-None-Match
preconditions, evaluated the same way wherever Murmur answers them.

- Entity tags compare as strings, never as numbers: `"01"` is not `"1"`.
- If-Match uses the strong comparison (a weak tag never matches); If-None-Match the weak
  one (`W/"x"` matches `"x"`). Either may be a list, or `*`.
- A header that is empty or not a list of entity tags is ignored, the way RFC 9110 has
  an invalid date in If-Modified-Since ignored: the request is then unconditional, and
  a method that requires a precondition answers 428 (RFC 6585) rather than guessing.

werkzeug parses the lists (`parse_etags`, `ETags.contains`/`contains_weak`); the grammar
is checked here first, because werkzeug also accepts unquoted tags.
"""

from __future__ import annotations

import re

from werkzeug.datastructures import ETags
from werkzeug.http import parse_etags, unquote_etag

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text; a list
# of them separated by commas with optional blanks, empty elements allowed (RFC 9110 §5.6.1).
_TAG = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_LIST = re.compile(rf"[ \t]*(?:{_TAG})?(?:[ \t]*,[ \t]*(?:{_TAG})?)*[ \t]*")

NOT_MODIFIED, PRECONDITION_FAILED = 304, 412


def tags(value: str | None) -> ETags | None:
    """The entity tags an If-Match or If-None-Match value lists (or `*`); None when the
    header is absent, lists none, or is not a list of entity tags: then it is ignored."""
    if value is None:
        return None
    if value.strip(" \t") == "*":
        return ETags(star_tag=True)
    if not _LIST.fullmatch(value):
        return None
    listed = parse_etags(value)
    return listed if listed else None


def if_match(listed: ETags, etag: str | None) -> bool:
    """Whether If-Match's `listed` tags hold for the current `etag` (strong comparison;
    `*` holds for any current representation)."""
    if etag is None:
        return False
    opaque, weak = unquote_etag(etag)
    return listed.star_tag or (not weak and listed.contains(opaque))


def if_none_match(listed: ETags, etag: str | None) -> bool:
    """Whether If-None-Match's `listed` tags hold for the current `etag`, i.e. none of them
    matches it (weak comparison; `*` fails for any current representation)."""
    if etag is None:
        return True
    opaque, _weak = unquote_etag(etag)
    return not listed.contains_weak(opaque)


def evaluate_read(if_match_value: str | None, if_none_match_value: str | None,
                  etag: str | None) -> int | None:
    """The preconditions of a GET or HEAD of a representation tagged `etag`, in the order
    of RFC 9110 §13.2.2: PRECONDITION_FAILED when If-Match does not hold, NOT_MODIFIED when
    If-None-Match does not, else None (answer in full). Unusable headers are ignored."""
    required = tags(if_match_value)
    if required is not None and not if_match(required, etag):
        return PRECONDITION_FAILED
    unwanted = tags(if_none_match_value)
    if unwanted is not None and not if_none_match(unwanted, etag):
        return NOT_MODIFIED
    return None


def missing_detail(value: str | None) -> str:
    """Why a request that must be conditional is not: the `detail` of its 428."""
    if value is None:
        return "Send If-Match with the ETag you read, to avoid lost updates."
    return ("If-Match lists no entity tag, so this edit would not be conditional: send the "
            "ETag you read, quotes included.")


def strong_tags(listed: ETags) -> list[str]:
    """The opaque parts of the strong tags listed, in no particular order (weak ones can
    never match under the strong comparison that If-Match uses)."""
    # werkzeug reads the empty tag `""` as None; no Murmur tag is empty.
    return sorted(tag for tag in listed.as_set() if tag)
