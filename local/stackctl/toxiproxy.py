"""A small client of Toxiproxy's HTTP API: proxies, their toxics, enabled or cut.

The platform's fault commands, the chaos experiments and the tests all go through it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from .layout import HOST, ports


class ToxiproxyError(RuntimeError):
    """Toxiproxy is not answering, or refused a request."""


class Toxiproxy:
    """One Toxiproxy server (by default the platform's, on MURMUR_TOXIPROXY_PORT)."""

    def __init__(self, host: str = HOST, port: int | None = None, timeout: float = 5.0):
        self.host = host
        self.port = ports().toxiproxy if port is None else port
        self.timeout = timeout

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def call(self, method: str, path: str, body: object = None) -> Any:
        """One call to the API; returns the decoded JSON answer (None if empty)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://{self.address}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()
            try:
                detail = json.loads(detail).get("error", detail)
            except (ValueError, AttributeError):
                pass
            raise ToxiproxyError(f"Toxiproxy refused {method} {path}: {exc.code} {detail}") \
                from None
        except OSError as exc:
            raise ToxiproxyError(
                f"Toxiproxy is not answering on {self.address} ({exc}); "
                "start it with `make start SERVICE=toxiproxy`") from None
        return json.loads(raw) if raw else None

    def version(self) -> str:
        return str(self.call("GET", "/version"))

    def proxies(self) -> dict[str, dict[str, Any]]:
        """Every proxy by name: listen, upstream, enabled, toxics."""
        return self.call("GET", "/proxies") or {}

    def populate(self, definitions: list[dict[str, Any]]) -> None:
        """Create missing proxies and fix changed ones; a proxy already right is left as it
        is, toxics and all."""
        self.call("POST", "/populate", definitions)

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        """Enable a proxy, or cut it: its open connections close and new ones are refused."""
        self.call("POST", f"/proxies/{proxy}", {"enabled": enabled})

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/proxies/{proxy}/toxics") or []

    def set_toxic(self, proxy: str, name: str, toxic_type: str, attributes: dict[str, Any],
                  stream: str = "downstream", toxicity: float = 1.0) -> None:
        """Add a toxic, or change the attributes of the one of that name already there."""
        if name in {t["name"] for t in self.toxics(proxy)}:
            self.call("POST", f"/proxies/{proxy}/toxics/{name}", {"attributes": attributes})
        else:
            self.call("POST", f"/proxies/{proxy}/toxics", {
                "name": name, "type": toxic_type, "stream": stream, "toxicity": toxicity,
                "attributes": attributes})

    def remove_toxic(self, proxy: str, name: str, missing_ok: bool = False) -> bool:
        """Remove one toxic; False when it was not there (and `missing_ok`)."""
        if missing_ok and name not in {t["name"] for t in self.toxics(proxy)}:
            return False
        self.call("DELETE", f"/proxies/{proxy}/toxics/{name}")
        return True

    def heal(self, proxy: str) -> None:
        """Remove every toxic from a proxy and enable it."""
        for toxic in self.toxics(proxy):
            self.call("DELETE", f"/proxies/{proxy}/toxics/{toxic['name']}")
        self.set_enabled(proxy, True)
