"""Run Murmur's local platform: the real stores and the services under supervisord.

Usage: stackctl.py [--profile dev|test] COMMAND [ARGS]
  up | down | status | bootstrap | logs [NAME]
  start NAME | stop NAME | restart NAME | reload NAME | rolling-restart
  toxic add DEP latency|timeout|reset [MS] | toxic cut DEP | toxic heal [DEP] | toxic list

Components are supervisord programs. `up` renders every config into the data folder,
prepares first-start state (initdb, Kafka storage format, secrets), starts what is not
running, waits for each component to answer a real query, then creates what the services
need (database + migrations, keyspace + tables, topics). Every step is idempotent.

The services reach each store through a Toxiproxy proxy (unless `MURMUR_TOXIPROXY=0` when
the profile is brought up), so `toxic` can add latency, timeouts and resets to one
dependency, or cut it, without touching the store itself.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import resource
import pwd
import secrets
import shutil
import socket
import string
import subprocess
import sys
import threading
import time
import uuid
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))

from common import config  # noqa: E402

HOME = config.murmur_home()
ETC, LOG, RUN = HOME / "etc", HOME / "log", HOME / "run"
CACHE = Path(config.env("MURMUR_CACHE", str(REPO / ".cache")))
HOST = "127.0.0.1"


def port(name: str, default: int) -> int:
    """A platform port, overridable as MURMUR_<NAME>_PORT."""
    return config.env_int(f"MURMUR_{name}_PORT", default)


PORTS = {
    "postgres": port("PG", 15432),
    "redis": port("REDIS", 16379),
    "kafka": port("KAFKA", 19092),
    "kafka_controller": port("KAFKA_CONTROLLER", 19093),
    "kafka_proxied": port("KAFKA_PROXIED", 19094),  # the listener behind the kafka proxy
    "cassandra": port("CASSANDRA", 19042),
    "cassandra_storage": port("CASSANDRA_STORAGE", 17000),
    "cassandra_jmx": port("CASSANDRA_JMX", 17199),
    "toxiproxy": port("TOXIPROXY", 18474),
    "nginx_status": port("NGINX_STATUS", 18080),
}



@dataclass(frozen=True)
class Proxy:
    """A Toxiproxy proxy in front of one store; services connect to its `listen` port."""

    name: str
    listen: int
    upstream: int
    direct: int  # where services connect when Toxiproxy is switched off
    env: str  # the services' variable holding the port they connect to
    only: tuple[str, ...] = ()  # if set: the only service processes using it (by base name)


PROXIES = [
    Proxy("postgres", port("PG_PROXY", 25432), PORTS["postgres"], PORTS["postgres"],
          "MURMUR_PG_PORT"),
    Proxy("redis", port("REDIS_PROXY", 26379), PORTS["redis"], PORTS["redis"],
          "MURMUR_REDIS_PORT"),
    Proxy("cassandra", port("CASSANDRA_PROXY", 29042), PORTS["cassandra"], PORTS["cassandra"],
          "MURMUR_CASSANDRA_PORT"),
    # Kafka tells a client which address to use after bootstrap. Its second listener
    # advertises the proxy's address, so a client bootstrapped through the proxy keeps
    # talking through it (and a cut proxy cuts all of its traffic).
    Proxy("kafka", port("KAFKA_PROXY", 29092), PORTS["kafka_proxied"], PORTS["kafka"],
          "MURMUR_KAFKA_PORT"),
    # fanout's own way to Redis, so a fault can hit the fan-out writes alone (the network
    # between fanout and Redis) while reads and posts keep theirs.
    Proxy("redis-fanout", port("REDIS_FANOUT_PROXY", 26380), PORTS["redis"], PORTS["redis"],
          "MURMUR_REDIS_PORT", only=("fanout",)),
]


def proxies_of(process: str) -> list[Proxy]:
    """The proxies a service process connects through: one per store, its own if it has."""
    chosen = {p.env: p for p in PROXIES if not p.only}
    chosen.update({p.env: p for p in PROXIES if process in p.only})
    return list(chosen.values())

# nginx skips a gateway for this long after it failed; a rolling restart waits it out
# before taking the next gateway down, so nginx always has one it will use.
NGINX_FAIL_TIMEOUT = 3

# Heaps sized so the whole stack idles within 4 GiB; see docs/local-platform.md.
KAFKA_HEAP = config.env("MURMUR_KAFKA_HEAP", "384m")
CASSANDRA_HEAP = config.env("MURMUR_CASSANDRA_HEAP", "768m")
CASSANDRA_YOUNG = config.env("MURMUR_CASSANDRA_YOUNG", "128m")


# --------------------------------------------------------------------------- components


@dataclass
class Component:
    """One supervised process and how to tell it is ready."""

    name: str
    command: str
    port: int
    ready: Callable[[], None]  # raises until the component answers
    timeout: float = 60.0
    user: str | None = None
    profile: str | None = None  # None: shared store; else part of that profile's app tier
    environment: dict[str, str] = field(default_factory=dict)
    stopsignal: str = "TERM"
    stopwaitsecs: int = 30
    startsecs: int = 1
    directory: str | None = None
    prepare: Callable[[], None] | None = None  # first-start state, idempotent
    configure: Callable[[], None] | None = None  # once ready, on every start (idempotent)
    config_files: tuple[str, ...] = ()  # rendered files in ETC the process reads at start

    @property
    def log(self) -> Path:
        return LOG / f"{self.name}.log"


def pg_bin() -> Path:
    """Folder with the newest installed PostgreSQL server binaries."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                        key=lambda p: int(p.parent.parent.name))
    if not candidates:
        sys.exit("PostgreSQL server binaries not found; run `make install`.")
    return candidates[-1].parent


def pg_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as the 'postgres' system user."""
    return "postgres" if os.geteuid() == 0 else None


def java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home:
        return str(Path(home) / "bin" / "java")
    for candidate in ("/usr/lib/jvm/java-17-openjdk-amd64/bin/java",):
        if Path(candidate).exists():
            return candidate
    return shutil.which("java") or "java"


def cassandra_jvm_options() -> str:
    lines = (REPO / "local/conf/cassandra-jvm17.options").read_text().splitlines()
    return " ".join(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))


def jamm_agent() -> str:
    jars = sorted((CACHE / "jars/cassandra").glob("jamm-*.jar"))
    return f"-javaagent:{jars[-1]}" if jars else ""


def components() -> list[Component]:
    """Every component of the local platform, stores first."""
    jars = CACHE / "jars"
    comps = [
        Component(
            "postgres",
            f"{pg_bin()}/postgres -D {HOME}/postgres -p {PORTS['postgres']} "
            f"-c listen_addresses={HOST} -c unix_socket_directories={RUN}/postgres "
            "-c shared_buffers=64MB -c max_connections=300 -c fsync=on",
            PORTS["postgres"], ready_postgres, timeout=60, user=pg_user(), stopsignal="INT",
            prepare=prepare_postgres,
        ),
        Component(
            "redis", f"{shutil.which('redis-server') or 'redis-server'} {ETC}/redis.conf",
            PORTS["redis"], ready_redis, timeout=30, config_files=("redis.conf",),
        ),
        Component(
            "kafka",
            f"{java()} -Xms{KAFKA_HEAP} -Xmx{KAFKA_HEAP} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "
            "-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true "
            f"-Dlog4j.configuration=file:{ETC}/kafka-log4j.properties -Dkafka.logs.dir={LOG} "
            f"-cp '{jars}/kafka/*' kafka.Kafka {ETC}/kafka.properties",
            PORTS["kafka"], ready_kafka, timeout=120, startsecs=3, prepare=prepare_kafka,
            config_files=("kafka.properties", "kafka-log4j.properties"),
        ),
        Component(
            "cassandra",
            f"{java()} -Xms{CASSANDRA_HEAP} -Xmx{CASSANDRA_HEAP} -Xmn{CASSANDRA_YOUNG} "
            f"{cassandra_jvm_options()} {jamm_agent()} "
            f"-Dcassandra.config=file://{ETC}/cassandra.yaml "
            f"-Dlogback.configurationFile={ETC}/cassandra-logback.xml "
            f"-Dcassandra.storagedir={HOME}/cassandra -Dcassandra.logdir={LOG} "
            f"-Dcassandra.jmx.local.port={PORTS['cassandra_jmx']} "
            "-Dcassandra-foreground=yes -Dcassandra.skip_wait_for_gossip_to_settle=0 "
            f"-cp '{jars}/cassandra/*' org.apache.cassandra.service.CassandraDaemon",
            PORTS["cassandra"], ready_cassandra, timeout=180, startsecs=3, stopwaitsecs=60,
            directory=str(HOME / "cassandra"),
            config_files=("cassandra.yaml", "cassandra-logback.xml"),
        ),
        # Toxiproxy keeps no state: it loads the proxies from its config file when it starts
        # (also after a crash and supervisord's restart), and `configure` makes a running one
        # match the rendered list.
        Component(
            "toxiproxy",
            f"{CACHE}/bin/toxiproxy-server -host {HOST} -port {PORTS['toxiproxy']} "
            f"-config {ETC}/toxiproxy.json",
            PORTS["toxiproxy"], ready_toxiproxy, timeout=20, configure=populate_proxies,
        ),
    ]
    for prof in config.PROFILES.values():
        prefix = "" if prof.name == "dev" else f"{prof.name}-"
        comps += service_components(prof, prefix)
        comps.append(Component(
            f"{prefix}nginx",
            f"{shutil.which('nginx') or '/usr/sbin/nginx'} -p {HOME}/nginx/{prof.name} "
            f"-c {ETC}/nginx-{prof.name}.conf -g 'daemon off;'",
            prof.http_port, ready_nginx(PORTS["nginx_status"] + prof.port_offset), timeout=20,
            profile=prof.name,
            stopsignal="QUIT",
        ))
    return comps


# The service processes of one profile: (name, module file that must exist, command, port
# key in config.SERVICE_PORTS or None). A process joins the stack once its code exists.
SERVICES = [
    ("users", "users/app.py", "gunicorn -c python:common.gunicorn_conf 'users.app:create_app()'",
     "users"),
    ("users-relay", "users/relay.py", "python -m users.relay", None),
    ("timeline", "timeline/app.py",
     "gunicorn -c python:common.gunicorn_conf 'timeline.app:create_app()'", "timeline"),
    ("timeline-relay", "timeline/relay.py", "python -m timeline.relay", None),
    ("fanout", "fanout/worker.py", "python -m fanout.worker", "fanout"),
    ("gateway-1", "gateway/app.py",
     "gunicorn -c python:common.gunicorn_conf 'gateway.app:create_app()'", "gateway"),
    ("gateway-2", "gateway/app.py",
     "gunicorn -c python:common.gunicorn_conf 'gateway.app:create_app()'", "gateway-2"),
]


def service_components(prof: config.Profile, prefix: str) -> list[Component]:
    """The profile's service processes whose code is present."""
    comps = []
    venv_bin = Path(sys.executable).parent
    for name, module_file, command, port_key in SERVICES:
        if not (REPO / "services" / module_file).exists():
            continue
        full = f"{prefix}{name}"
        env = {"PYTHONPATH": str(REPO / "services"), "MURMUR_PROFILE": prof.name,
               "MURMUR_PROCESS": full, "PYTHONUNBUFFERED": "1"}
        # Set either way, so a switch of MURMUR_TOXIPROXY changes the program's
        # environment and supervisord restarts it with the new one.
        proxied = toxiproxy_switch(prof.name)
        env.update({p.env: str(p.listen if proxied else p.direct) for p in proxies_of(name)})
        env.update(service_settings(prof.name))
        svc_port = 0
        if port_key:
            svc_port = config.SERVICE_PORTS[port_key] + prof.port_offset
            env["MURMUR_PORT"] = str(svc_port)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(RUN / "prometheus" / full)
        comps.append(Component(
            full, f"{venv_bin}/{command}", svc_port,
            ready_http(f"http://{HOST}:{svc_port}/readyz") if svc_port else ready_running(full),
            timeout=60, profile=prof.name, environment=env, stopwaitsecs=25,
            directory=str(REPO), startsecs=2,
        ))
    return comps


def component(name: str) -> Component:
    for comp in components():
        if comp.name == name:
            return comp
    names = ", ".join(c.name for c in components())
    sys.exit(f"unknown component {name!r}; one of: {names}")


# ------------------------------------------------------------------------ readiness checks


def ready_postgres() -> None:
    import psycopg

    s = config.stores()
    with psycopg.connect(host=HOST, port=s.pg_port, dbname="postgres", user=s.pg_user,
                         password=s.pg_password, connect_timeout=2) as conn:
        conn.execute("SELECT 1").fetchone()


def ready_redis() -> None:
    import redis

    client = redis.Redis(host=HOST, port=PORTS["redis"], socket_timeout=2, socket_connect_timeout=2)
    try:
        assert client.ping()
    finally:
        client.close()


def ready_kafka() -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=f"{HOST}:{PORTS['kafka']}", request_timeout_ms=3000,
                             client_id="murmur-stackctl")
    try:
        # Metadata with a live controller means the broker serves requests.
        if not admin.describe_cluster().get("controller_id", -1) >= 0:
            raise RuntimeError("no controller yet")
    finally:
        admin.close()


def ready_cassandra() -> None:
    from cassandra.cluster import Cluster

    cluster = Cluster([HOST], port=PORTS["cassandra"], connect_timeout=3, control_connection_timeout=3)
    try:
        session = cluster.connect()
        session.execute("SELECT release_version FROM system.local", timeout=3).one()
    finally:
        cluster.shutdown()


def ready_toxiproxy() -> None:
    http_get(f"http://{HOST}:{PORTS['toxiproxy']}/version")


def toxiproxy_switch(profile: str) -> bool:
    """Whether `profile`'s services go through Toxiproxy, as its last `up` recorded."""
    path = ETC / f"toxiproxy-{profile}.switch"
    return not path.exists() or path.read_text().strip() != "off"


def record_toxiproxy_switch(profile: str) -> None:
    """`up` reads MURMUR_TOXIPROXY (default on) for its profile; other commands keep it."""
    on = config.env_bool("MURMUR_TOXIPROXY", True)
    write_if_changed(ETC / f"toxiproxy-{profile}.switch", "on\n" if on else "off\n")
    if not on:
        print(f"  Toxiproxy off for the {profile} profile: its services connect to the stores "
              "directly", flush=True)


# Settings a profile's last `up` hands to its service processes: OpenTelemetry's standard
# variables, and the switches chaos experiments use (a safeguard turned off on purpose to
# show that its experiment then deviates; the celebrity threshold lifted for a wide
# fan-out). Recorded rather than inherited: supervisord keeps the environment it was first
# started with, so `OTEL_TRACES_SAMPLER=... make up` on a running stack would otherwise
# change nothing. A changed set changes the programs' definitions, and `up` restarts them.
RECORDED_SETTINGS = ("OTEL_", "MURMUR_DISABLE_SAFEGUARDS", "CELEBRITY_THRESHOLD")


def service_settings(profile: str) -> dict[str, str]:
    """The recorded settings `profile`'s last `up` was given, for its service processes."""
    path = ETC / f"settings-{profile}.env"
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def record_service_settings(profile: str) -> None:
    """`up` hands its caller's recorded settings to the services; other commands keep them."""
    settings = {k: v for k, v in sorted(os.environ.items())
                if k.startswith(RECORDED_SETTINGS) and v and "\n" not in v and '"' not in v}
    write_if_changed(ETC / f"settings-{profile}.env",
                     "".join(f"{k}={v}\n" for k, v in settings.items()))
    if settings:
        print(f"  settings for the {profile} profile's services: "
              + " ".join(f"{k}={v}" for k, v in settings.items()), flush=True)


def ready_http(url: str) -> Callable[[], None]:
    def check() -> None:
        http_get(url)

    return check


def ready_running(name: str) -> Callable[[], None]:
    """For a process without a port: supervisord holds it RUNNING (past its startsecs)."""
    def check() -> None:
        state = process_info(name)["statename"]
        if state != "RUNNING":
            raise RuntimeError(f"process state {state}")

    return check


def ready_nginx(status_port: int) -> Callable[[], None]:
    def check() -> None:
        http_get(f"http://{HOST}:{status_port}/healthz")

    return check


def http_get(url: str) -> None:
    import urllib.request

    with urllib.request.urlopen(url, timeout=2) as resp:
        resp.read()


# ----------------------------------------------------------------------------- toxiproxy


class ToxiproxyError(RuntimeError):
    """Toxiproxy is not answering, or refused a request."""


def toxiproxy(method: str, path: str, body: object = None) -> object:
    """One call to Toxiproxy's HTTP API; returns the decoded JSON answer (None if empty)."""
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{HOST}:{PORTS['toxiproxy']}{path}", data=data,
                                 method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip()
        try:
            detail = json.loads(detail).get("error", detail)
        except (ValueError, AttributeError):
            pass
        raise ToxiproxyError(f"Toxiproxy refused {method} {path}: {exc.code} {detail}") from None
    except OSError as exc:
        raise ToxiproxyError(
            f"Toxiproxy is not answering on {HOST}:{PORTS['toxiproxy']} ({exc}); "
            "start it with `make start SERVICE=toxiproxy`") from None
    return json.loads(raw) if raw else None


def proxy_definitions() -> list[dict[str, object]]:
    """The proxies as Toxiproxy's config file and /populate take them."""
    return [{"name": p.name, "listen": f"{HOST}:{p.listen}",
             "upstream": f"{HOST}:{p.upstream}", "enabled": True} for p in PROXIES]


def populate_proxies() -> None:
    """Create missing proxies and fix changed ones; a proxy already right is left as it is
    (with its toxics: `up` on a stack under a fault does not heal it)."""
    toxiproxy("POST", "/populate", proxy_definitions())


# How each `make toxic TOXIC=x` maps onto a Toxiproxy toxic: (type, attribute holding MS).
TOXICS = {"latency": ("latency", "latency"), "timeout": ("timeout", "timeout"),
          "reset": ("reset_peer", "timeout")}


def proxy_name(dep: str | None) -> str:
    names = ", ".join(p.name for p in PROXIES)
    if not dep:
        sys.exit(f"which dependency? DEP=one of {names}")
    if dep not in {p.name for p in PROXIES}:
        sys.exit(f"unknown dependency {dep!r}: DEP=one of {names}")
    return dep


def describe_toxic(kind: str, ms: int) -> str:
    if kind == "latency":
        return f"every response delayed by {ms} ms"
    if kind == "timeout":
        return ("data stops; connections hang until healed" if ms == 0
                else f"data stops; connections close after {ms} ms")
    return "connections reset (TCP RST)" + (f" after {ms} ms" if ms else "")


def toxic_add(dep: str | None, kind: str | None, ms_text: str | None) -> None:
    """Add (or change) one toxic on a store's proxy."""
    dep = proxy_name(dep)
    if kind not in TOXICS:
        sys.exit(f"unknown toxic {kind or ''!r}: TOXIC=one of {', '.join(TOXICS)}")
    if kind == "latency" and not ms_text:
        sys.exit("latency needs a delay: MS=<milliseconds>, e.g. MS=2000")
    try:
        ms = int(ms_text or 0)
        if ms < 0:
            raise ValueError
    except ValueError:
        sys.exit(f"MS must be a whole number of milliseconds, not {ms_text!r}")
    toxic_type, attribute = TOXICS[kind]
    name = f"{dep}_{kind}"  # one toxic per kind and proxy: adding it again changes it
    existing = {t["name"] for t in toxiproxy("GET", f"/proxies/{dep}/toxics")}
    if name in existing:
        toxiproxy("POST", f"/proxies/{dep}/toxics/{name}", {"attributes": {attribute: ms}})
    else:
        toxiproxy("POST", f"/proxies/{dep}/toxics", {
            "name": name, "type": toxic_type, "stream": "downstream", "toxicity": 1.0,
            "attributes": {attribute: ms}})
    print(f"{dep}: {describe_toxic(kind, ms)} (make heal DEP={dep} removes it)")


def toxic_cut(dep: str | None) -> None:
    """Disable a store's proxy: its open connections close and new ones are refused."""
    dep = proxy_name(dep)
    toxiproxy("POST", f"/proxies/{dep}", {"enabled": False})
    print(f"{dep}: cut, connections refused (make heal DEP={dep} restores it)")


def toxic_heal(dep: str | None) -> None:
    """Remove every toxic from one proxy (or from all) and enable it again."""
    names = [proxy_name(dep)] if dep else [p.name for p in PROXIES]
    for name in names:
        for toxic in toxiproxy("GET", f"/proxies/{name}/toxics") or []:
            toxiproxy("DELETE", f"/proxies/{name}/toxics/{toxic['name']}")
        toxiproxy("POST", f"/proxies/{name}", {"enabled": True})
        print(f"{name}: healed")


def toxic_list() -> None:
    """One line per proxy: addresses, enabled or cut, and its toxics."""
    proxies = toxiproxy("GET", "/proxies")
    print(f"{'proxy':<11}{'listen':<18}{'upstream':<18}{'state':<9}toxics")
    for name in sorted(proxies):
        p = proxies[name]
        toxics = ", ".join(
            f"{t['type']} {json.dumps(t['attributes'], separators=(',', ':'))}"
            for t in p.get("toxics") or []) or "-"
        state = "enabled" if p["enabled"] else "cut"
        print(f"{name:<11}{p['listen']:<18}{p['upstream']:<18}{state:<9}{toxics}")


def cmd_toxic(args: list[str]) -> None:
    action, rest = (args[0], args[1:]) if args else ("", [])
    rest += [None] * 3  # type: ignore[list-item] - absent arguments read as None
    try:
        if action == "add":
            toxic_add(rest[0], rest[1], rest[2])
        elif action == "cut":
            toxic_cut(rest[0])
        elif action == "heal":
            toxic_heal(rest[0])
        elif action == "list":
            toxic_list()
        else:
            sys.exit("usage: stackctl.py toxic add DEP latency|timeout|reset [MS] | "
                     "cut DEP | heal [DEP] | list")
    except ToxiproxyError as exc:
        sys.exit(f"error: {exc}")


# --------------------------------------------------------------------------- supervisord


def supervisor() -> xmlrpc.client.ServerProxy:
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{RUN}/supervisor.sock")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def supervisor_running() -> bool:
    try:
        return supervisor().supervisor.getState()["statename"] == "RUNNING"
    except (OSError, xmlrpc.client.Error):
        return False


def supervisord_conf() -> str:
    venv_bin = Path(sys.executable).parent
    lines = [
        "; Rendered by local/stackctl.py; edits are overwritten.",
        "[unix_http_server]", f"file={RUN}/supervisor.sock", "chmod=0700", "",
        "[supervisord]", f"logfile={LOG}/supervisord.log", f"pidfile={RUN}/supervisord.pid",
        "logfile_maxbytes=5MB", "logfile_backups=1", "loglevel=info", f"childlogdir={LOG}",
        # Cassandra and Kafka want many descriptors; ask for as many as the hard limit allows.
        f"minfds={min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1])}",
    ]
    if os.geteuid() == 0:
        lines.append("user=root")
    lines += [
        "", "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
        "[supervisorctl]", f"serverurl=unix://{RUN}/supervisor.sock", "",
    ]
    for comp in components():
        # A fixed PATH: the caller's own PATH would make every `up` from another shell
        # look like a config change and restart every program.
        env = {"PATH": f"{venv_bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "MURMUR_HOME": str(HOME), **comp.environment}
        lines += [
            f"[program:{comp.name}]",
            f"command={comp.command}",
            "autostart=false",
            "autorestart=unexpected" if comp.profile is None else "autorestart=true",
            f"startsecs={comp.startsecs}",
            "startretries=2",
            f"stopsignal={comp.stopsignal}",
            f"stopwaitsecs={comp.stopwaitsecs}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={comp.log}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=1",
            # supervisord expands %(...)s in values: a literal % is written %%.
            "environment=" + ",".join(f'{k}="{v.replace("%", "%%")}"' for k, v in env.items()),
        ]
        if comp.user:
            lines.append(f"user={comp.user}")
        if comp.directory:
            lines.append(f"directory={comp.directory}")
        lines.append("")
    return "\n".join(lines)


def ensure_supervisord() -> list[str]:
    """Start supervisord if needed, and make it pick up a changed config.

    Returns the programs that were running and were stopped to apply a changed definition:
    supervisord re-adds them stopped (every program has autostart=false), so the caller
    starts them again.
    """
    conf = ETC / "supervisord.conf"
    changed = write_if_changed(conf, supervisord_conf())
    if not supervisor_running():
        sock = RUN / "supervisor.sock"
        if sock.exists():
            sock.unlink()
        # Without the caller's OTEL_* variables: the services get the recorded ones only,
        # so one `up` with a sampler set cannot stick to supervisord for good.
        clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
                       check=True, env=clean)
        deadline = time.monotonic() + 15
        while not supervisor_running():
            if time.monotonic() > deadline:
                sys.exit(f"supervisord did not start; see {LOG}/supervisord.log")
            time.sleep(0.1)
        return []
    if not changed:
        return []
    running = {p["name"] for p in supervisor().supervisor.getAllProcessInfo()
               if p["statename"] in ("RUNNING", "STARTING")}
    # `supervisorctl update` adds new programs, removes old ones, and stops, removes and
    # re-adds the changed ones.
    subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(conf), "update"],
                   check=True, stdout=subprocess.DEVNULL)
    # A removed program is gone (UNKNOWN); a changed one is back, STOPPED.
    stopped = sorted(name for name in running if process_info(name)["statename"] == "STOPPED")
    for name in stopped:
        print(f"  restarting {name}: its definition changed", flush=True)
    return stopped


def process_info(name: str) -> dict:
    try:
        return supervisor().supervisor.getProcessInfo(name)
    except xmlrpc.client.Fault:
        return {"statename": "UNKNOWN", "pid": 0}


# ----------------------------------------------------------------------- rendering, prep


def write_if_changed(path: Path, text: str) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


CHANGED_CONFIGS: set[Path] = set()  # rendered files whose content changed in this run


def render(template: str, dest: Path, **values: object) -> None:
    text = (REPO / "local/conf" / template).read_text()
    base = {"HOST": HOST, "LOG_DIR": str(LOG), "RUN_DIR": str(RUN), "HOME": str(HOME),
            "REPO": str(REPO)}
    base.update({k: str(v) for k, v in values.items()})
    if write_if_changed(dest, string.Template(text).substitute(base)):
        CHANGED_CONFIGS.add(dest)


def render_configs() -> None:
    render("redis.conf.tmpl", ETC / "redis.conf", REDIS_PORT=PORTS["redis"],
           DATA_DIR=HOME / "redis")
    kafka_proxy = next(p for p in PROXIES if p.name == "kafka")
    render("kafka.properties.tmpl", ETC / "kafka.properties", DATA_DIR=HOME / "kafka",
           KAFKA_PORT=PORTS["kafka"], KAFKA_CONTROLLER_PORT=PORTS["kafka_controller"],
           KAFKA_PROXIED_PORT=PORTS["kafka_proxied"], KAFKA_PROXY_PORT=kafka_proxy.listen)
    render("kafka-log4j.properties.tmpl", ETC / "kafka-log4j.properties")
    render("cassandra.yaml.tmpl", ETC / "cassandra.yaml", DATA_DIR=HOME / "cassandra",
           CASSANDRA_PORT=PORTS["cassandra"], CASSANDRA_STORAGE_PORT=PORTS["cassandra_storage"])
    render("cassandra-logback.xml.tmpl", ETC / "cassandra-logback.xml")
    if write_if_changed(ETC / "toxiproxy.json", json.dumps(proxy_definitions(), indent=2) + "\n"):
        CHANGED_CONFIGS.add(ETC / "toxiproxy.json")
    for prof in config.PROFILES.values():
        (HOME / "nginx" / prof.name / "logs").mkdir(parents=True, exist_ok=True)
        (HOME / "nginx" / prof.name / "tmp").mkdir(parents=True, exist_ok=True)
        render("nginx.conf.tmpl", ETC / f"nginx-{prof.name}.conf", HTTP_PORT=prof.http_port,
               PROFILE=prof.name, NGINX_HOME=HOME / "nginx" / prof.name,
               STATUS_PORT=PORTS["nginx_status"] + prof.port_offset,
               RATE_LIMIT=config.env_int("MURMUR_RATE_LIMIT", 200),
               SIGNIN_RATE_LIMIT=config.env_int("MURMUR_SIGNIN_RATE_LIMIT", 10),
               GATEWAY_UPSTREAMS="".join(
                   f"        server {HOST}:{p + prof.port_offset} max_fails=2 "
                   f"fail_timeout={NGINX_FAIL_TIMEOUT}s;\n"
                   for p in (config.SERVICE_PORTS["gateway"], config.SERVICE_PORTS["gateway-2"])
               ).rstrip("\n"))


def ensure_secret(name: str, owner: str | None = None) -> str:
    path = config.secrets_dir() / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def ensure_jwt_keys() -> None:
    """An Ed25519 key pair: users signs session tokens, the gateway only verifies them."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path = config.secrets_dir() / "jwt-private.pem"
    public_path = config.secrets_dir() / "jwt-public.pem"
    if private_path.exists() and public_path.exists():
        return
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    private_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    private_path.chmod(0o600)
    public_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def prepare(comps: list[Component]) -> None:
    """First-start state of `comps`: folders, secrets, configs, initdb, Kafka format."""
    for d in (ETC, LOG, RUN, HOME / "redis", HOME / "kafka", HOME / "cassandra"):
        d.mkdir(parents=True, exist_ok=True)
    ensure_secret("postgres-password")
    ensure_jwt_keys()
    render_configs()
    for comp in comps:
        if comp.prepare:
            comp.prepare()


def as_user(user: str | None, cmd: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


def prepare_postgres() -> None:
    password = ensure_secret("postgres-password")
    data, sockdir = HOME / "postgres", RUN / "postgres"
    user = pg_user()
    for d in (data, sockdir):
        d.mkdir(parents=True, exist_ok=True)
        if user:
            pw = pwd.getpwnam(user)
            os.chown(d, pw.pw_uid, pw.pw_gid)
    data.chmod(0o700)
    if (data / "PG_VERSION").exists():
        return
    if user:
        check_traversable(data, user)
    pwfile = data.parent / ".pg-initdb-pw"
    pwfile.write_text(password + "\n")
    if user:
        pw = pwd.getpwnam(user)
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    try:
        subprocess.run(as_user(user, [
            f"{pg_bin()}/initdb", "-D", str(data), "-U", config.stores().pg_user,
            f"--pwfile={pwfile}", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
            "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions",
        ]), check=True, stdout=subprocess.DEVNULL)
    finally:
        pwfile.unlink(missing_ok=True)


def check_traversable(path: Path, user: str) -> None:
    """Make sure `user` can reach `path`; as root, grant search (o+x, not read) on the way."""
    def reachable() -> bool:
        return subprocess.run(["runuser", "-u", user, "--", "test", "-w", str(path)]).returncode == 0

    if not reachable() and os.geteuid() == 0:
        for parent in reversed(path.parents):
            mode = parent.stat().st_mode
            if not mode & 0o001:
                print(f"  granting search permission (o+x) on {parent} so {user} can reach its data")
                parent.chmod(mode | 0o001)
    if not reachable():
        sys.exit(f"user {user!r} cannot reach {path}: give the folders above it o+x, "
                 "or set MURMUR_HOME to a folder it can reach.")


def kafka_cluster_id() -> str:
    """A Kafka cluster id: a random UUID in URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def prepare_kafka() -> None:
    if (HOME / "kafka" / "meta.properties").exists():
        return
    subprocess.run([java(), "-Xmx256m", f"-Dlog4j.configuration=file:{ETC}/kafka-log4j.properties",
                    "-cp", f"{CACHE}/jars/kafka/*", "kafka.tools.StorageTool", "format",
                    "-t", kafka_cluster_id(), "-c", str(ETC / "kafka.properties")],
                   check=True, stdout=subprocess.DEVNULL)


# ----------------------------------------------------------------------------- commands


def start(comps: list[Component]) -> None:
    """Start the given components (if not running) and wait until each answers."""
    names = {c.name for c in comps}
    # Programs supervisord restarted because their definition changed: waited for after the
    # given components are ready and configured (a service may need a store's new proxy).
    restarted = [component(n) for n in ensure_supervisord() if n not in names]
    server = supervisor()
    for comp in comps + restarted:
        if process_info(comp.name)["statename"] not in ("RUNNING", "STARTING"):
            server.supervisor.startProcess(comp.name, False)
            stamp_config(comp)
    for group in (comps, restarted):
        wait_ready(group)
        for comp in group:
            if comp.configure:
                comp.configure()


def config_stamp(comp: Component) -> Path:
    return RUN / "config-stamps" / comp.name


def config_digest(comp: Component) -> str:
    digest = hashlib.sha256()
    for name in comp.config_files:
        digest.update((ETC / name).read_bytes())
    return digest.hexdigest()


def stamp_config(comp: Component) -> None:
    """Remember which rendered config a component was started with."""
    if comp.config_files:
        write_if_changed(config_stamp(comp), config_digest(comp))


def restart_stale(comps: list[Component]) -> None:
    """Stop running components whose rendered config changed since they started (the
    following `start` brings them back on the new one)."""
    for comp in comps:
        if not comp.config_files or process_info(comp.name)["statename"] != "RUNNING":
            continue
        stamp = config_stamp(comp)
        if not stamp.exists():  # started before stamps were kept: adopt the running one
            stamp_config(comp)
        elif stamp.read_text() != config_digest(comp):
            print(f"  restarting {comp.name}: its configuration changed", flush=True)
            supervisor().supervisor.stopProcess(comp.name, True)


def wait_ready(comps: list[Component]) -> None:
    """Poll each component's readiness check until its deadline, with progress."""
    t0 = time.monotonic()
    results: dict[str, tuple[bool, str, float]] = {}
    lock = threading.Lock()

    def watch(comp: Component) -> None:
        deadline = t0 + comp.timeout
        last_error = ""
        while time.monotonic() < deadline:
            state = process_info(comp.name)["statename"]
            if state in ("FATAL", "EXITED", "STOPPED", "UNKNOWN"):
                last_error = f"process state {state}"
                break
            try:
                comp.ready()
                if state != "RUNNING":  # answering, but supervisord has not confirmed it yet
                    raise RuntimeError(f"process state {state}")
                with lock:
                    results[comp.name] = (True, "", time.monotonic() - t0)
                    print(f"  ready  {comp.name:<16} {time.monotonic() - t0:6.1f}s", flush=True)
                return
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
                last_error = f"{type(exc).__name__}: {exc}".strip()
            time.sleep(0.5)
        else:
            last_error = f"not ready within {comp.timeout:.0f}s ({last_error})"
        with lock:
            results[comp.name] = (False, last_error, time.monotonic() - t0)

    threads = [threading.Thread(target=watch, args=(c,), daemon=True) for c in comps]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        waiting = [c.name for c in comps if c.name not in results]
        if waiting and int(time.monotonic() - t0) % 5 == 0:
            print(f"  waiting ({time.monotonic() - t0:4.0f}s): {', '.join(waiting)}", flush=True)
            time.sleep(0.5)
    failed = [c for c in comps if not results[c.name][0]]
    for comp in failed:
        print(f"\nERROR: {comp.name} did not come up: {results[comp.name][1]}", file=sys.stderr)
        print(f"--- last lines of {comp.log} ---", file=sys.stderr)
        print(tail(comp.log, 25), file=sys.stderr)
        print(f"--- full log: {comp.log}", file=sys.stderr)
    if failed:
        sys.exit(1)


def tail(path: Path, lines: int) -> str:
    if not path.exists():
        return "(no log written)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def stores_and_tier(profile: str) -> list[Component]:
    return [c for c in components() if c.profile in (None, profile)]


def cmd_up(profile: str) -> None:
    t0 = time.monotonic()
    comps = stores_and_tier(profile)
    print(f"Starting Murmur ({profile} profile); data in {HOME}", flush=True)
    record_toxiproxy_switch(profile)
    record_service_settings(profile)
    prepare(comps)
    stores = [c for c in comps if c.profile is None]
    if supervisor_running():
        restart_stale(stores)
    # Stores (Toxiproxy among them) before services, and the schema too: the services
    # expect their proxies, tables and topics to exist.
    start(stores)
    run_bootstrap(profile)
    tier = [c for c in comps if c.profile is not None]
    running = {c.name for c in tier if process_info(c.name)["statename"] == "RUNNING"}
    start(tier)
    reload_changed_nginx(profile, running)
    prof = config.PROFILES[profile]
    print(f"\nMurmur is up in {time.monotonic() - t0:.1f}s.")
    print(f"  API      http://localhost:{prof.http_port}/api/v1")
    print("  status   make status    logs  make logs [SERVICE=x]    stop  make down")


def reload_changed_nginx(profile: str, running: set[str]) -> None:
    """A running nginx whose rendered config changed reloads it (HUP: no dropped request)."""
    name = "nginx" if profile == "dev" else f"{profile}-nginx"
    if name in running and ETC / f"nginx-{profile}.conf" in CHANGED_CONFIGS:
        supervisor().supervisor.signalProcess(name, "HUP")
        print(f"  reloaded {name}: its configuration changed", flush=True)


def cmd_down() -> None:
    if not supervisor_running():
        print("Murmur is not running.")
        return
    server = supervisor()
    # App tier first, stores last, so nothing loses a dependency mid-request.
    for comp in reversed(components()):
        if process_info(comp.name)["statename"] in ("RUNNING", "STARTING", "BACKOFF"):
            print(f"  stopping {comp.name}", flush=True)
            server.supervisor.stopProcess(comp.name, True)
    server.supervisor.shutdown()
    deadline = time.monotonic() + 30
    while (RUN / "supervisord.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    print("Murmur is down.")


def cmd_status() -> None:
    running = supervisor_running()
    print(f"{'component':<22}{'state':<8}{'port':<8}pid")
    for comp in components():
        info = process_info(comp.name) if running else {"statename": "STOPPED", "pid": 0}
        up = info["statename"] == "RUNNING"
        pid = info["pid"] if up else "-"
        print(f"{comp.name:<22}{'up' if up else 'down':<8}{comp.port or '-':<8}{pid}")


def cmd_stop(name: str) -> None:
    comps = [component(name)]
    if not supervisor_running():
        print(f"{name} is not running (the platform is down).")
        return
    for comp in comps:
        if process_info(comp.name)["statename"] in ("RUNNING", "STARTING", "BACKOFF"):
            supervisor().supervisor.stopProcess(comp.name, True)
        if comp.port:
            wait_port_closed(comp.port)
        print(f"stopped {comp.name}")


def wait_port_closed(port_no: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((HOST, port_no)) != 0:
                return
        time.sleep(0.2)


def cmd_start(name: str) -> None:
    comps = [component(name)]
    prepare(comps)
    start(comps)


def cmd_restart(name: str) -> None:
    """Stop one component gracefully (SIGTERM: in-flight work finishes), start it, wait
    until it is ready."""
    t0 = time.monotonic()
    cmd_stop(name)
    cmd_start(name)
    print(f"restarted {name} in {time.monotonic() - t0:.1f}s", flush=True)


def gunicorn_workers(master: int) -> set[int]:
    """The worker pids of a gunicorn master (its children)."""
    return {int(pid) for pid in
            Path(f"/proc/{master}/task/{master}/children").read_text().split()}


def poll(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"ERROR: {what} did not happen within {timeout:.0f}s")
        time.sleep(0.1)


def cmd_reload(name: str) -> None:
    """Replace every worker of a gunicorn service without closing its socket: add as many
    new workers as it has, wait until each has loaded the app, then retire the old ones
    (SIGTERM: each finishes its in-flight requests). For a service with one instance, this
    is the restart that never refuses or delays a request."""
    comp = component(name)
    if "gunicorn" not in comp.command:
        sys.exit(f"{name} is not a gunicorn service; use `make restart SERVICE={name}`")
    info = process_info(name)
    if info["statename"] != "RUNNING":
        sys.exit(f"{name} is not running; use `make start SERVICE={name}`")
    t0 = time.monotonic()
    master, server = info["pid"], supervisor()
    markers = RUN / "gunicorn" / name  # written by common.gunicorn_conf.post_worker_init
    old = gunicorn_workers(master)
    # One signal at a time: the same signal sent twice before it is handled counts once.
    for _ in old:
        count = len(gunicorn_workers(master))
        server.supervisor.signalProcess(name, "TTIN")
        poll(lambda: len(gunicorn_workers(master)) > count, 15, f"a new worker of {name}")
    new = gunicorn_workers(master) - old
    poll(lambda: all((markers / str(pid)).exists() for pid in new), 60,
         f"the new workers of {name} loading the app")
    for _ in old:
        count = len(gunicorn_workers(master))
        server.supervisor.signalProcess(name, "TTOU")  # gunicorn retires the oldest worker
        poll(lambda: len(gunicorn_workers(master)) < count, 40, f"an old worker of {name} leaving")
    if gunicorn_workers(master) & old:
        sys.exit(f"ERROR: {name} still runs old workers {sorted(gunicorn_workers(master) & old)}")
    wait_ready([comp])
    print(f"reloaded {name}: {len(new)} new workers in {time.monotonic() - t0:.1f}s", flush=True)


# Gateways first, restarted (nginx retries idempotent requests on the other one), then the
# services they call, reloaded in place (one instance each, so a stop would refuse calls),
# then the relays and fanout, restarted (they serve no requests; what they had not yet
# committed is processed again by the new process, and every consumer is idempotent).
ROLLING_ORDER = [("gateway-1", "restart"), ("gateway-2", "restart"), ("users", "reload"),
                 ("timeline", "reload"), ("users-relay", "restart"),
                 ("timeline-relay", "restart"), ("fanout", "restart")]


def cmd_rolling_restart(profile: str) -> None:
    """Restart every service process of `profile`, one at a time, each ready before the next."""
    prefix = "" if profile == "dev" else f"{profile}-"
    present = {c.name for c in components() if c.profile == profile}
    t0 = time.monotonic()
    for base, how in ROLLING_ORDER:
        name = prefix + base
        if name not in present:
            continue
        if how == "reload" and process_info(name)["statename"] == "RUNNING":
            cmd_reload(name)
        else:
            cmd_restart(name)
        if base.startswith("gateway-"):
            # nginx may still skip this gateway for fail_timeout after its last failed
            # connection; the next one goes down only once nginx uses this one again.
            time.sleep(NGINX_FAIL_TIMEOUT + 0.5)
    print(f"rolling restart of the {profile} profile done in {time.monotonic() - t0:.1f}s")


def cmd_logs(name: str | None) -> None:
    files = [str(component(name).log)] if name else sorted(str(p) for p in LOG.glob("*.log"))
    if not files:
        sys.exit(f"no logs yet in {LOG}")
    os.execvp("tail", ["tail", "-n", "50", "-F", *files])


def run_bootstrap(profile: str) -> None:
    """Create the profile's databases, keyspace and topics (idempotent)."""
    import bootstrap

    bootstrap.run(profile)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=config.env("MURMUR_PROFILE", "dev"),
                        choices=sorted(config.PROFILES))
    parser.add_argument("command", choices=[
        "up", "down", "status", "start", "stop", "restart", "reload", "rolling-restart", "logs",
        "toxic", "bootstrap", "prepare"])
    parser.add_argument("args", nargs="*")
    args = parser.parse_args(argv)
    args.name = args.args[0] if args.args else None
    os.environ["MURMUR_PROFILE"] = args.profile
    if args.command in ("start", "stop", "restart", "reload") and not args.name:
        parser.error(f"{args.command} needs a component name (SERVICE=x)")
    commands: dict[str, Callable[[], object]] = {
        "up": lambda: cmd_up(args.profile),
        "down": cmd_down,
        "status": cmd_status,
        "start": lambda: cmd_start(args.name),
        "stop": lambda: cmd_stop(args.name),
        "restart": lambda: cmd_restart(args.name),
        "reload": lambda: cmd_reload(args.name),
        "rolling-restart": lambda: cmd_rolling_restart(args.profile),
        "toxic": lambda: cmd_toxic(args.args),
        "logs": lambda: cmd_logs(args.name),
        "prepare": lambda: prepare(components()),
        "bootstrap": lambda: run_bootstrap(args.profile),
    }
    commands[args.command]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
