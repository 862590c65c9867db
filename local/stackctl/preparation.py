"""Setting the stores up: first-start state (folders, secrets, initdb, Kafka's storage
format), then what the services need in a profile's namespace (database and migrations,
keyspace and tables, topics). Every step is idempotent."""

from __future__ import annotations

import base64
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from common import config

from .layout import paths


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


def make_folders() -> None:
    p = paths()
    for d in (p.etc, p.log, p.run, p.home / "redis", p.home / "kafka", p.home / "cassandra"):
        d.mkdir(parents=True, exist_ok=True)


def ensure_secret(name: str) -> str:
    path = config.secrets_dir() / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def ensure_jwt_keys() -> None:
    """Each profile's token-signing keys: the private key users signs with and the set of
    public keys the gateways accept (stackctl/keys.py, where `rotate-keys` lives)."""
    from .keys import ensure_key_sets

    ensure_key_sets()


def ensure_secrets() -> None:
    ensure_secret("postgres-password")
    ensure_secret("cursor-key")  # seals page cursors, shared by users and timeline
    ensure_jwt_keys()


def as_user(user: str | None, cmd: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


def prepare_postgres() -> None:
    """A database cluster (initdb) with the platform's password, once."""
    password = ensure_secret("postgres-password")
    p = paths()
    data, sockdir = p.home / "postgres", p.run / "postgres"
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
        probe = ["runuser", "-u", user, "--", "test", "-w", str(path)]
        return subprocess.run(probe).returncode == 0

    if not reachable() and os.geteuid() == 0:
        for parent in reversed(path.parents):
            mode = parent.stat().st_mode
            if not mode & 0o001:
                print(f"  granting search permission (o+x) on {parent} so {user} can reach "
                      "its data")
                parent.chmod(mode | 0o001)
    if not reachable():
        sys.exit(f"user {user!r} cannot reach {path}: give the folders above it o+x, "
                 "or set MURMUR_HOME to a folder it can reach.")


def kafka_cluster_id() -> str:
    """A Kafka cluster id: a random UUID in URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def prepare_kafka() -> None:
    """Kafka's storage formatted for KRaft (`kafka-storage format`), once."""
    p = paths()
    if (p.home / "kafka" / "meta.properties").exists():
        return
    subprocess.run([java(), "-Xmx256m",
                    f"-Dlog4j.configuration=file:{p.etc}/kafka-log4j.properties",
                    "-cp", f"{p.cache}/jars/kafka/*", "kafka.tools.StorageTool", "format",
                    # One argument: an id may start with "-", which would read as an option.
                    f"--cluster-id={kafka_cluster_id()}", "-c", str(p.etc / "kafka.properties")],
                   check=True, stdout=subprocess.DEVNULL)


def run_bootstrap(profile: str) -> None:
    """Create the profile's database and migrations, keyspace and tables, topics
    (idempotent; the steps live with the services that own the data)."""
    import bootstrap  # local/bootstrap.py

    bootstrap.run(profile)
