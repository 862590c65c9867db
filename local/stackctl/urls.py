"""Every address a person opens, for one profile: `make urls`, and the end of `make up`."""

from __future__ import annotations

import urllib.request

from common import config

from .layout import ports

# The Locust web UI's port (`make load-ui`; loadtests/run.py reads the same variable).
LOCUST_UI_PORT_DEFAULT = 18089


def locust_ui_port() -> int:
    return config.env_int("MURMUR_LOAD_UI_PORT", LOCUST_UI_PORT_DEFAULT)


def answers(url: str) -> bool:
    """Whether something serves `url` (any HTTP answer below 400)."""
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status < 400
    except OSError:
        return False


def urls(profile: str) -> list[tuple[str, str]]:
    """(name, url) of the profile's API and front end, the trace viewer, the time-series
    server's UI and dashboards, the alerts, and Locust's UI when it runs."""
    port = ports()
    edge = f"http://localhost:{config.PROFILES[profile].http_port}"
    found = [
        # The API's own description: the base /api/v1 itself is no operation.
        ("api", f"{edge}/api/v1/openapi.json"),
        ("web", f"{edge}/"),
        ("traces", f"http://localhost:{port.zipkin}/zipkin/"),
        ("metrics", f"http://localhost:{port.victoriametrics}/vmui/"),
        ("dashboards", f"http://localhost:{port.victoriametrics}/vmui/#/dashboards"),
        ("alerts", f"http://localhost:{port.vmalert}/vmalert/alerts"),
    ]
    locust = f"http://localhost:{locust_ui_port()}/"
    if answers(locust.replace("localhost", "127.0.0.1")):
        found.append(("locust", locust))
    return found


def lines(profile: str, indent: str = "") -> list[str]:
    """The addresses as `name url` lines, names padded to one column."""
    found = urls(profile)
    width = max(len(name) for name, _ in found)
    return [f"{indent}{name:<{width}} {url}" for name, url in found]


def cmd_urls(profile: str) -> None:
    """Print `name url`, one a line."""
    print("\n".join(lines(profile)))
