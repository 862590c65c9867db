"""Run Murmur's local platform: the real stores and the services under supervisord.

Usage: python local/stackctl [--profile dev|test] COMMAND [ARGS]
  up | down | status | bootstrap | prepare | logs [NAME] | urls
  start NAME | stop NAME | restart NAME | reload NAME | rolling-restart | rotate-keys
  toxic add DEP latency|timeout|reset [MS] | toxic cut DEP | toxic heal [DEP] | toxic list

Components are supervisord programs: the stores, Toxiproxy, the observability servers
(Zipkin, VictoriaMetrics, vmalert), and each profile's services and nginx. `up` renders
every config into the data folder, prepares first-start state (initdb, Kafka storage
format, secrets), starts what is not running, waits for each component to answer a real
query, then creates what the services need (database + migrations, keyspace + tables,
topics), and prints where to go (`urls`). Every step is idempotent.

The services reach each store through a Toxiproxy proxy of their profile's own (unless
`MURMUR_TOXIPROXY=0` when the profile is brought up), so `toxic` can add latency, timeouts
and resets to one dependency of one profile, or cut it, without touching the store itself
or the other profile.

The package, one module per job:
  layout       where the files are, the stores' ports, a profile's name prefix and offset
  settings     what a profile's last `up` recorded (the Toxiproxy switch, OTEL_*, ...)
  components   the component table (stores, Toxiproxy, each profile's services and nginx)
               and the configuration files rendered for them
  observability  Zipkin, VictoriaMetrics and vmalert, and the scrape configuration
  urls         every address a person opens (`make urls`, the end of `up`)
  readiness    each component's readiness check, and waiting for them
  supervisord  supervisord's configuration, start and XML-RPC control
  preparation  the stores' set-up: first-start state, migrations, keyspace, topics
  lifecycle    up, down, status, start, stop, restart, logs
  rolling      gunicorn reloads in place and the rolling restart of a profile
  keys         each profile's token-signing keys, and `rotate-keys`
  toxiproxy    a small client of Toxiproxy's HTTP API (the tests and chaos actions use it)
  proxy_table  each profile's proxies in front of the stores
  faults       the `toxic` commands
  cli          the command line
"""

from __future__ import annotations

import sys
from pathlib import Path

_LOCAL = Path(__file__).resolve().parents[1]
for _folder in (_LOCAL.parent / "services", _LOCAL):  # common.*, and local/bootstrap.py
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from .components import Component, component  # noqa: E402
from .layout import HOST, paths, ports, prefix  # noqa: E402
from .proxy_table import Proxy, populate_proxies, proxies, proxy  # noqa: E402
from .settings import RECORDED_SETTINGS, service_settings, toxiproxy_switch  # noqa: E402
from .supervisord import process_info  # noqa: E402
from .toxiproxy import Toxiproxy, ToxiproxyError  # noqa: E402

__all__ = ["HOST", "RECORDED_SETTINGS", "Component", "Proxy", "Toxiproxy", "ToxiproxyError",
           "component", "paths", "populate_proxies", "ports", "prefix",
           "process_info", "proxies", "proxy", "service_settings", "toxiproxy_switch"]
