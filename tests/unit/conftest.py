"""Unit-test settings: what the platform would give a service process.

The users and timeline apps refuse to start without the page cursor key, which the
platform generates at its first start (`cursor-key`). Unit tests run without the
platform, so they seal cursors with a random key of this run, unless one is set.
"""

from __future__ import annotations

import os
import secrets

os.environ.setdefault("MURMUR_CURSOR_KEY", secrets.token_urlsafe(32))
