"""Run Murmur's local platform: the real stores and the services under supervisord.

Usage: stackctl.py [--profile dev|test] up|down|status|start NAME|stop NAME|logs [NAME]|bootstrap

Components are supervisord programs. `up` renders every config into the data folder,
prepares first-start state (initdb, Kafka storage format, secrets), starts what is not
running, waits for each component to answer a real query, then creates what the services
need (database + migrations, keyspace + tables, topics). Every step is idempotent.
"""

from __future__ import annotations

import argparse
import base64
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
    "cassandra": port("CASSANDRA", 19042),
    "cassandra_storage": port("CASSANDRA_STORAGE", 17000),
    "cassandra_jmx": port("CASSANDRA_JMX", 17199),
    "toxiproxy": port("TOXIPROXY", 18474),
    "nginx_status": port("NGINX_STATUS", 18080),
}

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
            PORTS["redis"], ready_redis, timeout=30,
        ),
        Component(
            "kafka",
            f"{java()} -Xms{KAFKA_HEAP} -Xmx{KAFKA_HEAP} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "
            "-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true "
            f"-Dlog4j.configuration=file:{ETC}/kafka-log4j.properties -Dkafka.logs.dir={LOG} "
            f"-cp '{jars}/kafka/*' kafka.Kafka {ETC}/kafka.properties",
            PORTS["kafka"], ready_kafka, timeout=120, startsecs=3, prepare=prepare_kafka,
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
        ),
        Component(
            "toxiproxy",
            f"{CACHE}/bin/toxiproxy-server -host {HOST} -port {PORTS['toxiproxy']}",
            PORTS["toxiproxy"], ready_toxiproxy, timeout=20,
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
        env = {"PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
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
            "environment=" + ",".join(f'{k}="{v}"' for k, v in env.items()),
        ]
        if comp.user:
            lines.append(f"user={comp.user}")
        if comp.directory:
            lines.append(f"directory={comp.directory}")
        lines.append("")
    return "\n".join(lines)


def ensure_supervisord() -> None:
    """Start supervisord if needed, and make it pick up a changed config."""
    conf = ETC / "supervisord.conf"
    changed = write_if_changed(conf, supervisord_conf())
    if not supervisor_running():
        sock = RUN / "supervisor.sock"
        if sock.exists():
            sock.unlink()
        subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)], check=True)
        deadline = time.monotonic() + 15
        while not supervisor_running():
            if time.monotonic() > deadline:
                sys.exit(f"supervisord did not start; see {LOG}/supervisord.log")
            time.sleep(0.1)
    elif changed:
        # What `supervisorctl update` does: add new programs, restart changed ones.
        subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(conf), "update"],
                       check=True, stdout=subprocess.DEVNULL)


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
    render("kafka.properties.tmpl", ETC / "kafka.properties", DATA_DIR=HOME / "kafka",
           KAFKA_PORT=PORTS["kafka"], KAFKA_CONTROLLER_PORT=PORTS["kafka_controller"])
    render("kafka-log4j.properties.tmpl", ETC / "kafka-log4j.properties")
    render("cassandra.yaml.tmpl", ETC / "cassandra.yaml", DATA_DIR=HOME / "cassandra",
           CASSANDRA_PORT=PORTS["cassandra"], CASSANDRA_STORAGE_PORT=PORTS["cassandra_storage"])
    render("cassandra-logback.xml.tmpl", ETC / "cassandra-logback.xml")
    for prof in config.PROFILES.values():
        (HOME / "nginx" / prof.name / "logs").mkdir(parents=True, exist_ok=True)
        (HOME / "nginx" / prof.name / "tmp").mkdir(parents=True, exist_ok=True)
        render("nginx.conf.tmpl", ETC / f"nginx-{prof.name}.conf", HTTP_PORT=prof.http_port,
               PROFILE=prof.name, NGINX_HOME=HOME / "nginx" / prof.name,
               STATUS_PORT=PORTS["nginx_status"] + prof.port_offset,
               RATE_LIMIT=config.env_int("MURMUR_RATE_LIMIT", 200),
               GATEWAY_UPSTREAMS="".join(
                   f"        server {HOST}:{p + prof.port_offset} max_fails=2 fail_timeout=5s;\n"
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
    ensure_supervisord()
    server = supervisor()
    pending = []
    for comp in comps:
        if process_info(comp.name)["statename"] not in ("RUNNING", "STARTING"):
            server.supervisor.startProcess(comp.name, False)
        pending.append(comp)
    wait_ready(pending)


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
    prepare(comps)
    print(f"Starting Murmur ({profile} profile); data in {HOME}", flush=True)
    # Schema before services: the services expect their tables and topics to exist.
    start([c for c in comps if c.profile is None])
    import bootstrap

    bootstrap.run(profile)
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


def cmd_status() -> int:
    running = supervisor_running()
    print(f"{'component':<22}{'state':<8}{'port':<8}pid")
    down = 0
    for comp in components():
        info = process_info(comp.name) if running else {"statename": "STOPPED", "pid": 0}
        up = info["statename"] == "RUNNING"
        down += not up
        pid = info["pid"] if up else "-"
        print(f"{comp.name:<22}{'up' if up else 'down':<8}{comp.port or '-':<8}{pid}")
    return 0


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


def cmd_logs(name: str | None) -> None:
    files = [str(component(name).log)] if name else sorted(str(p) for p in LOG.glob("*.log"))
    if not files:
        sys.exit(f"no logs yet in {LOG}")
    os.execvp("tail", ["tail", "-n", "50", "-F", *files])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=config.env("MURMUR_PROFILE", "dev"),
                        choices=sorted(config.PROFILES))
    parser.add_argument("command", choices=["up", "down", "status", "start", "stop", "logs",
                                            "bootstrap", "prepare"])
    parser.add_argument("name", nargs="?")
    args = parser.parse_args(argv)
    os.environ["MURMUR_PROFILE"] = args.profile
    if args.command in ("start", "stop") and not args.name:
        parser.error(f"{args.command} needs a component name (SERVICE=x)")
    if args.command == "up":
        cmd_up(args.profile)
    elif args.command == "down":
        cmd_down()
    elif args.command == "status":
        return cmd_status()
    elif args.command == "start":
        cmd_start(args.name)
    elif args.command == "stop":
        cmd_stop(args.name)
    elif args.command == "logs":
        cmd_logs(args.name)
    elif args.command == "prepare":
        prepare(components())
    elif args.command == "bootstrap":
        import bootstrap

        bootstrap.run(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
