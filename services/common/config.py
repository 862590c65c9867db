"""Environment-driven settings shared by every Murmur process (12-factor, local defaults).

Each service has its own config module built on these. The local platform tool
(`local/stackctl.py`) imports this module too, so the ports it starts the stores on and
the addresses the services connect to come from one place.

Profiles keep the demo data and the test data apart on the same servers: each profile
has its own Postgres database, Cassandra keyspace, Kafka topic prefix and Redis database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def env(name: str, default: str) -> str:
    """Return the environment variable `name`, or `default` when unset or empty."""
    value = os.environ.get(name, "")
    return value if value != "" else default


def env_int(name: str, default: int) -> int:
    """Return the environment variable `name` as an int, or `default`."""
    return int(env(name, str(default)))


def env_float(name: str, default: float) -> float:
    """Return the environment variable `name` as a float, or `default`."""
    return float(env(name, str(default)))


def env_bool(name: str, default: bool) -> bool:
    """Return the environment variable `name` as a boolean (1/true/yes/on), or `default`."""
    return env(name, "1" if default else "0").strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> tuple[str, ...]:
    """Return the comma-separated environment variable `name` as a tuple, blanks dropped."""
    return tuple(item.strip() for item in env(name, default).split(",") if item.strip())


# Safeguards a chaos experiment may turn off on purpose, to show that the experiment
# guarding each then deviates (docs/chaos.md). Never set in a deployment.
SAFEGUARDS = ("breakers", "home-fallback")


def disabled_safeguards() -> frozenset[str]:
    """The safeguards MURMUR_DISABLE_SAFEGUARDS turns off (comma-separated; default none)."""
    names = frozenset(env_list("MURMUR_DISABLE_SAFEGUARDS", ""))
    unknown = names - set(SAFEGUARDS)
    if unknown:
        raise ValueError(f"MURMUR_DISABLE_SAFEGUARDS: unknown {sorted(unknown)}; "
                         f"known: {', '.join(SAFEGUARDS)}")
    return names


def bind_host() -> str:
    """Address the service processes listen on: loopback locally, 0.0.0.0 in a container."""
    return env("MURMUR_BIND_HOST", "127.0.0.1")


def bind_address(port: int) -> str:
    """`host:port` to listen on (an IPv6 host in brackets, as gunicorn wants it)."""
    host = bind_host()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def murmur_home() -> Path:
    """Folder holding all runtime data of the local platform (git-ignored)."""
    return Path(env("MURMUR_HOME", str(REPO_ROOT / "var"))).resolve()


def secrets_dir() -> Path:
    """Folder where secrets are generated at first start."""
    return Path(env("MURMUR_SECRETS_DIR", str(murmur_home() / "secrets")))


def read_secret(name: str, env_name: str) -> str:
    """Return a secret from the environment, else from the secrets folder ('' if absent)."""
    value = os.environ.get(env_name)
    if value:
        return value
    path = secrets_dir() / name
    return path.read_text().strip() if path.exists() else ""


@dataclass(frozen=True)
class Profile:
    """Where one profile keeps its data on the shared servers."""

    name: str
    pg_database: str
    keyspace: str
    topic_prefix: str
    redis_db: int
    http_port: int  # nginx listen port of this profile's app tier
    port_offset: int  # added to each service's base port
    # Low in the test profile so end-to-end tests can make a celebrity with a few follows.
    celebrity_threshold: int = 2000  # CELEBRITY_THRESHOLD_DEFAULT


PROFILES = {
    "dev": Profile("dev", "murmur", "murmur", "", 0, 8080, 0),
    "test": Profile("test", "murmur_test", "murmur_test", "test.", 1, 8090, 10,
                    celebrity_threshold=5),
}


def profile() -> Profile:
    """The active profile (MURMUR_PROFILE, default 'dev'), with env overrides applied."""
    base = PROFILES[env("MURMUR_PROFILE", "dev")]
    return Profile(
        name=base.name,
        pg_database=env("MURMUR_PG_DATABASE", base.pg_database),
        keyspace=env("MURMUR_CASSANDRA_KEYSPACE", base.keyspace),
        topic_prefix=env("MURMUR_TOPIC_PREFIX", base.topic_prefix),
        redis_db=env_int("MURMUR_REDIS_DB", base.redis_db),
        http_port=env_int("MURMUR_HTTP_PORT", base.http_port),
        port_offset=base.port_offset,
        celebrity_threshold=env_int("CELEBRITY_THRESHOLD", base.celebrity_threshold),
    )


@dataclass(frozen=True)
class Stores:
    """Addresses and credentials of the backing stores, as a service sees them.

    `host` (MURMUR_STORE_HOST) is where every store is by default (the local platform runs
    them all on one machine); each store's own host overrides it (MURMUR_PG_HOST,
    MURMUR_REDIS_HOST, MURMUR_CASSANDRA_HOSTS, MURMUR_KAFKA_BOOTSTRAP), as on Kubernetes,
    where each is a Service of its own.
    """

    host: str
    pg_port: int
    pg_user: str
    pg_password: str
    pg_database: str
    pg_pool_size: int
    redis_port: int
    redis_db: int
    kafka_port: int
    topic_prefix: str
    kafka_partitions: int
    cassandra_port: int
    keyspace: str
    cassandra_replication: int
    cassandra_consistency: str
    connect_timeout: float
    pg_host: str = "127.0.0.1"
    redis_host: str = "127.0.0.1"
    # MURMUR_KAFKA_BOOTSTRAP ("host:port,host:port"); '' means host:kafka_port.
    kafka_servers: str = ""
    kafka_replication: int = 1  # replication factor of the topics Murmur creates
    cassandra_hosts: tuple[str, ...] = ("127.0.0.1",)  # the driver's contact points

    @property
    def pg_conninfo(self) -> str:
        """libpq connection string for psycopg."""
        return (
            f"host={self.pg_host} port={self.pg_port} dbname={self.pg_database} "
            f"user={self.pg_user} password={self.pg_password} "
            f"connect_timeout={max(1, int(self.connect_timeout))} application_name=murmur"
        )

    @property
    def redis_url(self) -> str:
        """redis-py URL including the profile's database number."""
        return f"redis://{self.redis_host}:{self.redis_port}/{self.redis_db}"

    @property
    def kafka_bootstrap(self) -> str:
        """Kafka bootstrap servers ("host:port,host:port")."""
        return self.kafka_servers or f"{self.host}:{self.kafka_port}"

    def topic(self, name: str) -> str:
        """Topic name with the profile's prefix (e.g. 'test.tweets.v1')."""
        return f"{self.topic_prefix}{name}"


def stores() -> Stores:
    """Store settings from the environment, with the local platform's defaults."""
    prof = profile()
    host = env("MURMUR_STORE_HOST", "127.0.0.1")
    kafka_port = env_int("MURMUR_KAFKA_PORT", 19092)
    return Stores(
        host=host,
        pg_port=env_int("MURMUR_PG_PORT", 15432),
        pg_user=env("MURMUR_PG_USER", "murmur"),
        pg_password=read_secret("postgres-password", "MURMUR_PG_PASSWORD"),
        pg_database=prof.pg_database,
        pg_pool_size=env_int("MURMUR_PG_POOL_SIZE", 8),
        redis_port=env_int("MURMUR_REDIS_PORT", 16379),
        redis_db=prof.redis_db,
        kafka_port=kafka_port,
        topic_prefix=prof.topic_prefix,
        kafka_partitions=env_int("MURMUR_KAFKA_PARTITIONS", 6),
        cassandra_port=env_int("MURMUR_CASSANDRA_PORT", 19042),
        keyspace=prof.keyspace,
        cassandra_replication=env_int("MURMUR_CASSANDRA_RF", 1),
        cassandra_consistency=env("MURMUR_CASSANDRA_CONSISTENCY", "ONE"),
        connect_timeout=env_float("MURMUR_CONNECT_TIMEOUT", 3.0),
        pg_host=env("MURMUR_PG_HOST", host),
        redis_host=env("MURMUR_REDIS_HOST", host),
        # A server named without a port gets MURMUR_KAFKA_PORT.
        kafka_servers=",".join(server if ":" in server else f"{server}:{kafka_port}"
                               for server in env_list("MURMUR_KAFKA_BOOTSTRAP", "")),
        kafka_replication=env_int("MURMUR_KAFKA_REPLICATION", 1),
        cassandra_hosts=env_list("MURMUR_CASSANDRA_HOSTS", host),
    )


# Base ports of the services; a profile adds its port_offset (dev 0, test 10). The relays
# serve only /healthz, /readyz and /metrics on theirs.
SERVICE_PORTS = {"gateway": 18001, "gateway-2": 18002, "users": 18101, "users-relay": 18102,
                 "timeline": 18201, "timeline-relay": 18202, "fanout": 18301}


def service_port(name: str) -> int:
    """Port this profile runs service `name` on (MURMUR_PORT overrides, e.g. for a bench)."""
    return env_int("MURMUR_PORT", SERVICE_PORTS[name] + profile().port_offset)


def service_url(name: str) -> str:
    """Base URL of service `name` as seen by its callers (MURMUR_<NAME>_URL overrides)."""
    default = f"http://127.0.0.1:{SERVICE_PORTS[name] + profile().port_offset}"
    return env(f"MURMUR_{name.upper()}_URL", default)


CELEBRITY_THRESHOLD_DEFAULT = 2000
HOME_TIMELINE_CAP_DEFAULT = 800


def celebrity_threshold() -> int:
    """Authors with at least this many followers are merged at read time, not fanned out.

    CELEBRITY_THRESHOLD overrides the profile's value (2000 in dev, 5 in test).
    """
    return profile().celebrity_threshold


def home_timeline_cap() -> int:
    """Entries kept per home timeline (Twitter kept 800)."""
    return env_int("HOME_TIMELINE_CAP", HOME_TIMELINE_CAP_DEFAULT)
