"""What a profile's last `up` recorded for its service processes.

supervisord keeps the environment it was first started with, so `OTEL_TRACES_SAMPLER=...
make up` on a running stack would otherwise change nothing. `up` records its caller's
settings per profile instead and writes them into each program's definition: a changed
set changes the definitions, and `up` restarts those programs.
"""

from __future__ import annotations

import os

from common import config

from .layout import paths, write_if_changed

# OpenTelemetry's standard variables, and the switches chaos experiments use (a safeguard
# turned off on purpose to show that its experiment then deviates; the celebrity threshold
# lifted for a wide fan-out).
RECORDED_SETTINGS = ("OTEL_", "MURMUR_DISABLE_SAFEGUARDS", "CELEBRITY_THRESHOLD")


def toxiproxy_switch(profile: str) -> bool:
    """Whether `profile`'s services go through Toxiproxy, as its last `up` recorded."""
    path = paths().etc / f"toxiproxy-{profile}.switch"
    return not path.exists() or path.read_text().strip() != "off"


def record_toxiproxy_switch(profile: str) -> None:
    """`up` reads MURMUR_TOXIPROXY (default on) for its profile; other commands keep it."""
    on = config.env_bool("MURMUR_TOXIPROXY", True)
    write_if_changed(paths().etc / f"toxiproxy-{profile}.switch", "on\n" if on else "off\n")
    if not on:
        print(f"  Toxiproxy off for the {profile} profile: its services connect to the stores "
              "directly", flush=True)


def service_settings(profile: str) -> dict[str, str]:
    """The recorded settings `profile`'s last `up` was given, for its service processes."""
    path = paths().etc / f"settings-{profile}.env"
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def record_service_settings(profile: str) -> None:
    """`up` hands its caller's recorded settings to the services; other commands keep them."""
    settings = {k: v for k, v in sorted(os.environ.items())
                if k.startswith(RECORDED_SETTINGS) and v and "\n" not in v and '"' not in v}
    write_if_changed(paths().etc / f"settings-{profile}.env",
                     "".join(f"{k}={v}\n" for k, v in settings.items()))
    if settings:
        print(f"  settings for the {profile} profile's services: "
              + " ".join(f"{k}={v}" for k, v in settings.items()), flush=True)
