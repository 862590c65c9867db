"""The components of the local platform (stores, Toxiproxy, each profile's services and
nginx) and the configuration files rendered for them."""

from __future__ import annotations

import hashlib
import json
import shutil
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from common import config

from . import observability, preparation, readiness
from .layout import HOST, offset, paths, ports, prefix, venv_bin, write_if_changed
from .proxy_table import all_proxies, kafka_listener, populate_proxies, proxies, proxies_of
from .settings import service_settings, toxiproxy_switch

REPO = config.REPO_ROOT
# nginx skips a gateway for this long after it failed; a rolling restart waits it out
# before taking the next gateway down, so nginx always has one it will use.
NGINX_FAIL_TIMEOUT = 3


@dataclass
class Component:
    """One supervised process and how to tell it is ready."""

    name: str
    command: str
    port: int
    ready: readiness.Check
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
    config_files: tuple[str, ...] = ()  # rendered files in etc/ the process reads at start

    @property
    def log(self) -> Path:
        return paths().log / f"{self.name}.log"

    def config_digest(self) -> str:
        """A digest of the rendered files the component reads at start."""
        digest = hashlib.sha256()
        for name in self.config_files:
            digest.update((paths().etc / name).read_bytes())
        return digest.hexdigest()


@dataclass(frozen=True)
class ServiceProcess:
    """One service process each profile runs."""

    name: str
    module_file: str  # under services/: the process joins the stack once its code exists
    command: str  # run from the virtual environment's bin folder
    # Its port in config.SERVICE_PORTS (MURMUR_PORT): its API, or for a process without
    # one (a relay, the author projection) only /healthz, /readyz and /metrics.
    port_key: str
    probes_only: bool = False

    @property
    def gunicorn(self) -> bool:
        return self.command.startswith("gunicorn ")


def _gunicorn(app: str) -> str:
    return f"gunicorn -c python:common.gunicorn_conf '{app}'"


SERVICES = [
    ServiceProcess("users", "users/entrypoints/app.py",
                   _gunicorn("users.entrypoints.app:create_app()"), "users"),
    ServiceProcess("users-relay", "users/entrypoints/relay.py",
                   "python -m users.entrypoints.relay", "users-relay", probes_only=True),
    ServiceProcess("timeline", "timeline/entrypoints/app.py",
                   _gunicorn("timeline.entrypoints.app:create_app()"), "timeline"),
    ServiceProcess("timeline-relay", "timeline/entrypoints/relay.py",
                   "python -m timeline.entrypoints.relay", "timeline-relay", probes_only=True),
    # timeline's copy of the authors it shows, kept from users' events (users.v1).
    ServiceProcess("timeline-authors", "timeline/entrypoints/authors.py",
                   "python -m timeline.entrypoints.authors", "timeline-authors",
                   probes_only=True),
    ServiceProcess("fanout", "fanout/entrypoints/worker.py",
                   "python -m fanout.entrypoints.worker", "fanout"),
    ServiceProcess("gateway-1", "gateway/entrypoints/app.py",
                   _gunicorn("gateway.entrypoints.app:create_app()"), "gateway"),
    ServiceProcess("gateway-2", "gateway/entrypoints/app.py",
                   _gunicorn("gateway.entrypoints.app:create_app()"), "gateway-2"),
]


def service_port(key: str, profile: str) -> int:
    """`profile`'s port of a service (its base port plus the profile's offset)."""
    return config.SERVICE_PORTS[key] + offset(profile)


def nginx_status_port(profile: str) -> int:
    return ports().nginx_status + offset(profile)


def cassandra_jvm_options() -> str:
    lines = (REPO / "local/conf/cassandra-jvm17.options").read_text().splitlines()
    return " ".join(line.strip() for line in lines
                    if line.strip() and not line.lstrip().startswith("#"))


def jamm_agent() -> str:
    jars = sorted((paths().cache / "jars/cassandra").glob("jamm-*.jar"))
    return f"-javaagent:{jars[-1]}" if jars else ""


def store_components() -> list[Component]:
    """The servers both profiles share: the stores, Toxiproxy and the observability servers."""
    p, port = paths(), ports()
    home, etc, log, run, jars = p.home, p.etc, p.log, p.run, p.cache / "jars"
    java = preparation.java()
    kafka_heap = config.env("MURMUR_KAFKA_HEAP", "384m")
    # Heaps sized so the whole stack idles within 4 GiB; see docs/local-platform.md.
    cassandra_heap = config.env("MURMUR_CASSANDRA_HEAP", "768m")
    cassandra_young = config.env("MURMUR_CASSANDRA_YOUNG", "128m")
    return [
        Component(
            "postgres",
            f"{preparation.pg_bin()}/postgres -D {home}/postgres -p {port.postgres} "
            f"-c listen_addresses={HOST} -c unix_socket_directories={run}/postgres "
            "-c shared_buffers=64MB -c max_connections=300 -c fsync=on",
            port.postgres, readiness.ready_postgres, timeout=60, user=preparation.pg_user(),
            stopsignal="INT", prepare=preparation.prepare_postgres,
        ),
        Component(
            "redis", f"{shutil.which('redis-server') or 'redis-server'} {etc}/redis.conf",
            port.redis, readiness.ready_redis, timeout=30, config_files=("redis.conf",),
        ),
        Component(
            "kafka",
            f"{java} -Xms{kafka_heap} -Xmx{kafka_heap} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "
            "-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true "
            f"-Dlog4j.configuration=file:{etc}/kafka-log4j.properties -Dkafka.logs.dir={log} "
            f"-cp '{jars}/kafka/*' kafka.Kafka {etc}/kafka.properties",
            port.kafka, readiness.ready_kafka, timeout=120, startsecs=3,
            prepare=preparation.prepare_kafka,
            config_files=("kafka.properties", "kafka-log4j.properties"),
        ),
        Component(
            "cassandra",
            f"{java} -Xms{cassandra_heap} -Xmx{cassandra_heap} -Xmn{cassandra_young} "
            f"{cassandra_jvm_options()} {jamm_agent()} "
            f"-Dcassandra.config=file://{etc}/cassandra.yaml "
            f"-Dlogback.configurationFile={etc}/cassandra-logback.xml "
            f"-Dcassandra.storagedir={home}/cassandra -Dcassandra.logdir={log} "
            f"-Dcassandra.jmx.local.port={port.cassandra_jmx} "
            "-Dcassandra-foreground=yes -Dcassandra.skip_wait_for_gossip_to_settle=0 "
            f"-cp '{jars}/cassandra/*' org.apache.cassandra.service.CassandraDaemon",
            port.cassandra, readiness.ready_cassandra, timeout=180, startsecs=3,
            stopwaitsecs=60, directory=str(home / "cassandra"),
            config_files=("cassandra.yaml", "cassandra-logback.xml"),
        ),
        # Toxiproxy keeps no state: it loads every profile's proxies from its config file
        # when it starts (also after a crash and supervisord's restart), and `configure`
        # makes a running one match the rendered list.
        Component(
            "toxiproxy",
            f"{p.cache}/bin/toxiproxy-server -host {HOST} -port {port.toxiproxy} "
            f"-config {etc}/toxiproxy.json",
            port.toxiproxy, readiness.ready_toxiproxy, timeout=20, configure=populate_proxies,
        ),
        *observability_components(java),
    ]


def observability_components(java: str) -> list[Component]:
    """Zipkin, VictoriaMetrics and vmalert (local/stackctl/observability.py)."""
    port = ports()
    zipkin_command, zipkin_env = observability.zipkin_command(java)
    return [
        Component("zipkin", zipkin_command, port.zipkin, observability.ready_zipkin,
                  timeout=90, environment=zipkin_env, startsecs=2,
                  prepare=observability.prepare_observability),
        Component("victoriametrics", observability.victoriametrics_command(),
                  port.victoriametrics, observability.ready_victoriametrics, timeout=30,
                  stopsignal="INT", prepare=observability.prepare_observability),
        Component("vmalert", observability.vmalert_command(), port.vmalert,
                  observability.ready_vmalert, timeout=30,
                  prepare=observability.prepare_observability),
    ]


def service_components(profile: str) -> list[Component]:
    """The profile's service processes whose code is present."""
    comps = []
    proxied = toxiproxy_switch(profile)
    settings = service_settings(profile)
    for svc in SERVICES:
        if not (REPO / "services" / svc.module_file).exists():
            continue
        full = prefix(profile) + svc.name
        env = {"PYTHONPATH": str(REPO / "services"), "MURMUR_PROFILE": profile,
               "MURMUR_PROCESS": full, "PYTHONUNBUFFERED": "1"}
        # Set either way, so a switch of MURMUR_TOXIPROXY changes the program's
        # environment and supervisord restarts it with the new one.
        env.update({p.env: str(p.listen if proxied else p.direct)
                    for p in proxies_of(profile, svc.name)})
        # Spans go to the local Zipkin unless this profile's `up` was given other OTEL_*.
        env.update(observability.tracing_defaults())
        env.update(settings)
        svc_port = service_port(svc.port_key, profile)
        env["MURMUR_PORT"] = str(svc_port)
        if not svc.probes_only:  # its metrics may come from several processes (gunicorn)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(paths().run / "prometheus" / full)
        comps.append(Component(
            full, f"{venv_bin()}/{svc.command}", svc_port,
            readiness.ready_http(f"http://{HOST}:{svc_port}/readyz"),
            timeout=60, profile=profile, environment=env, stopwaitsecs=25,
            directory=str(REPO), startsecs=2,
        ))
    return comps


def nginx_component(profile: str) -> Component:
    prof = config.PROFILES[profile]
    home = paths().home / "nginx" / profile
    return Component(
        f"{prefix(profile)}nginx",
        f"{shutil.which('nginx') or '/usr/sbin/nginx'} -p {home} "
        f"-c {paths().etc}/nginx-{profile}.conf -g 'daemon off;'",
        prof.http_port, readiness.ready_nginx(nginx_status_port(profile)), timeout=20,
        profile=profile, stopsignal="QUIT",
    )


def components() -> list[Component]:
    """Every component of the local platform, stores first."""
    comps = store_components()
    for profile in config.PROFILES:
        comps += service_components(profile)
        comps.append(nginx_component(profile))
    return comps


def component(name: str) -> Component:
    """The component called `name`; exits naming the known ones if there is none."""
    comps = components()
    for comp in comps:
        if comp.name == name:
            return comp
    sys.exit(f"unknown component {name!r}; one of: {', '.join(c.name for c in comps)}")


def stores_and_tier(profile: str) -> list[Component]:
    """The shared stores and `profile`'s own processes."""
    return [c for c in components() if c.profile in (None, profile)]


# ------------------------------------------------------------------------------ rendering


def render(template: str, dest: Path, **values: object) -> bool:
    """Render local/conf/<template> into `dest`; True when its content changed."""
    p = paths()
    text = (REPO / "local/conf" / template).read_text()
    base = {"HOST": HOST, "LOG_DIR": str(p.log), "RUN_DIR": str(p.run), "HOME": str(p.home),
            "REPO": str(REPO)}
    base.update({k: str(v) for k, v in values.items()})
    return write_if_changed(dest, string.Template(text).substitute(base))


def kafka_listeners() -> dict[str, str]:
    """The broker's proxied listeners, one per profile, each behind that profile's kafka
    proxy and advertising the proxy's address."""
    listeners, advertised = [], []
    for profile in config.PROFILES:
        name, port = kafka_listener(profile)
        kafka_proxy = next(p for p in proxies(profile) if p.store == "kafka")
        listeners.append(f"{name}://{HOST}:{port}")
        advertised.append(f"{name}://{HOST}:{kafka_proxy.listen}")
    names = [kafka_listener(profile)[0] for profile in config.PROFILES]
    return {"PROXIED_LISTENERS": ",".join(listeners),
            "PROXIED_ADVERTISED": ",".join(advertised),
            "PROXIED_PROTOCOLS": ",".join(f"{n}:PLAINTEXT" for n in names)}


def render_configs() -> set[Path]:
    """Render every component's configuration; returns the files whose content changed."""
    p, port = paths(), ports()
    etc, home = p.etc, p.home
    changed: set[Path] = set()

    def note(path: Path, did_change: bool) -> None:
        if did_change:
            changed.add(path)

    note(etc / "redis.conf", render("redis.conf.tmpl", etc / "redis.conf",
                                    REDIS_PORT=port.redis, DATA_DIR=home / "redis"))
    note(etc / "kafka.properties", render(
        "kafka.properties.tmpl", etc / "kafka.properties", DATA_DIR=home / "kafka",
        KAFKA_PORT=port.kafka, KAFKA_CONTROLLER_PORT=port.kafka_controller,
        **kafka_listeners()))
    note(etc / "kafka-log4j.properties",
         render("kafka-log4j.properties.tmpl", etc / "kafka-log4j.properties"))
    note(etc / "cassandra.yaml", render(
        "cassandra.yaml.tmpl", etc / "cassandra.yaml", DATA_DIR=home / "cassandra",
        CASSANDRA_PORT=port.cassandra, CASSANDRA_STORAGE_PORT=port.cassandra_storage))
    note(etc / "cassandra-logback.xml",
         render("cassandra-logback.xml.tmpl", etc / "cassandra-logback.xml"))
    note(*observability.render_scrape_config())
    definitions = [proxy.definition() for proxy in all_proxies()]
    note(etc / "toxiproxy.json",
         write_if_changed(etc / "toxiproxy.json", json.dumps(definitions, indent=2) + "\n"))
    for profile, prof in config.PROFILES.items():
        nginx_home = home / "nginx" / profile
        (nginx_home / "logs").mkdir(parents=True, exist_ok=True)
        (nginx_home / "tmp").mkdir(parents=True, exist_ok=True)
        gateways = (service_port("gateway", profile), service_port("gateway-2", profile))
        dest = etc / f"nginx-{profile}.conf"
        note(dest, render(
            "nginx.conf.tmpl", dest, HTTP_PORT=prof.http_port, PROFILE=profile,
            NGINX_HOME=nginx_home, STATUS_PORT=nginx_status_port(profile),
            RATE_LIMIT=config.env_int("MURMUR_RATE_LIMIT", 200),
            SIGNIN_RATE_LIMIT=config.env_int("MURMUR_SIGNIN_RATE_LIMIT", 10),
            GATEWAY_UPSTREAMS="".join(
                f"        server {HOST}:{gw} max_fails=2 fail_timeout={NGINX_FAIL_TIMEOUT}s;\n"
                for gw in gateways).rstrip("\n")))
    return changed
