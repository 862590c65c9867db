"""Environment-driven settings shared by every Murmur process (12-factor, local defaults).

**One declaration per setting.** A setting is declared once, as a field of a frozen
dataclass, with `setting(...)`: the variable(s) it is read from, its default, how its text is
parsed and a one-line doc. `load(cls)` reads every declared setting of `cls` from the
environment; building `cls(...)` directly gives the declared defaults, as `load` does in an
empty environment. A default may be computed from the fields declared above it
(`default=lambda c: ...`), and `computed(...)` declares a value that is never read from
the environment. `loaded(fn)` declares a part that `load` gets from another reader (the
stores of a service config, another service's URL). Each service has its own config module
built on these; `settings(cls)` lists what a class reads.

The local platform tool (`local/stackctl`) imports this module too, so the ports it starts
the stores on and the addresses the services connect to come from one place.

Profiles keep the demo data and the test data apart on the same servers: each profile
has its own Postgres database, Cassandra keyspace, Kafka topic prefix and Redis database.

Nothing is read from the environment at import; every reader runs when a process asks.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[2]

S = TypeVar("S")
MISSING: Any = dataclasses.MISSING
_SETTING = "murmur.setting"
_LOADER = "murmur.loader"


class SettingError(ValueError):
    """A variable holds a value its setting cannot use; the message names the variable."""


# ----------------------------------------------------------------------- raw readers


def env(name: str, default: str) -> str:
    """Return the environment variable `name`, or `default` when unset or empty."""
    value = os.environ.get(name, "")
    return value if value != "" else default


def _parsed(name: str, raw: str, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(raw)
    except (TypeError, ValueError) as exc:
        raise SettingError(f"{name}={raw!r}: {exc}") from None


def env_int(name: str, default: int) -> int:
    """Return the environment variable `name` as an int, or `default`."""
    raw = env(name, "")
    return default if raw == "" else _parsed(name, raw, int)


def env_float(name: str, default: float) -> float:
    """Return the environment variable `name` as a float, or `default`."""
    raw = env(name, "")
    return default if raw == "" else _parsed(name, raw, float)


def env_bool(name: str, default: bool) -> bool:
    """Return the environment variable `name` as a boolean (1/true/yes/on), or `default`."""
    return env(name, "1" if default else "0").strip().lower() in {"1", "true", "yes", "on"}


def comma_list(text: str) -> tuple[str, ...]:
    """Parse a comma-separated list, blanks dropped."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def env_list(name: str, default: str) -> tuple[str, ...]:
    """Return the comma-separated environment variable `name` as a tuple, blanks dropped."""
    return comma_list(env(name, default))


# ------------------------------------------------------------------------ declarations


class _Computed:
    """A dataclass default standing for a value computed from the instance's other fields."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __repr__(self) -> str:
        return "<computed>"


@dataclass(frozen=True)
class Setting:
    """One setting: the variables it is read from (the first one set wins), its default, the
    parser of their text and a one-line doc.

    `default` may be a function of the instance being built (fields declared above it are
    set). A variable name may hold `{NAME}`, the upper-cased value of the `name` field
    given to `load` (e.g. `GATEWAY_{NAME}_READ_TIMEOUT`). `secret_file` names a file of the
    secrets folder read when no variable is set (the local platform generates secrets
    there); such a setting, and one declared `secret`, is left out of the dataclass's repr.
    """

    env: tuple[str, ...]
    default: Any = MISSING
    parse: Callable[[str], Any] = str
    doc: str = ""
    secret_file: str | None = None
    secret: bool = False

    def variables(self, **placeholders: str) -> tuple[str, ...]:
        """The variable names, placeholders filled in."""
        return tuple(name.format_map(placeholders) if "{" in name else name
                     for name in self.env)

    def lookup(self, **placeholders: str) -> Any:
        """The value the environment (or the secrets folder) sets, else MISSING."""
        for name in self.variables(**placeholders):
            raw = os.environ.get(name, "")
            if raw != "":
                return _parsed(name, raw, self.parse)
        if self.secret_file:
            path = secrets_dir() / self.secret_file
            if path.exists():
                return path.read_text().strip()
        return MISSING

    def read(self, default: Any = MISSING, **placeholders: str) -> Any:
        """This setting's value outside a settings class: the environment's, else `default`
        (else the declared default, which must then not depend on an instance)."""
        value = self.lookup(**placeholders)
        if value is not MISSING:
            return value
        default = self.default if default is MISSING else default
        if default is MISSING or callable(default):
            raise SettingError(f"{self.variables(**placeholders)[0]} is not set")
        return default

    def field(self, default: Any = MISSING) -> Any:
        """A dataclass field reading this setting; `default` replaces the declared one (for a
        setting declared here whose default depends on the process, e.g. its port)."""
        declared = self if default is MISSING else dataclasses.replace(self, default=default)
        kwargs: dict[str, Any] = {"metadata": {_SETTING: declared}}
        if declared.secret_file or declared.secret:
            kwargs["repr"] = False
        if declared.default is not MISSING:
            kwargs["default"] = (_Computed(declared.default) if callable(declared.default)
                                 else declared.default)
        return dataclasses.field(**kwargs)


def setting(env: str | tuple[str, ...], default: Any = MISSING, *,
            parse: Callable[[str], Any] = str, doc: str = "",
            secret_file: str | None = None, secret: bool = False) -> Any:
    """Declare a setting as a dataclass field (see `Setting`)."""
    names = (env,) if isinstance(env, str) else tuple(env)
    return Setting(names, default, parse, doc, secret_file, secret).field()


def computed(fn: Callable[[Any], Any], *, doc: str = "") -> Any:
    """Declare a value computed from the fields declared above it (no variable of its own)."""
    return dataclasses.field(default=_Computed(fn), metadata={_SETTING: Setting((), fn, doc=doc)})


def loaded(fn: Callable[[], Any], *, doc: str = "") -> Any:
    """Declare a required part that `load` gets by calling `fn()` (a reader of its own)."""
    return dataclasses.field(metadata={_LOADER: fn, "doc": doc})


class Settings:
    """Base of a settings dataclass: fills in the defaults computed from other fields."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, _Computed):
                object.__setattr__(self, f.name, value.fn(self))


def settings(cls: type) -> dict[str, Setting]:
    """The settings `cls` declares that are read from a variable, by field name."""
    return {f.name: f.metadata[_SETTING] for f in dataclasses.fields(cls)
            if _SETTING in f.metadata and f.metadata[_SETTING].env}


def load(cls: type[S], *, defaults: Mapping[str, Any] | None = None, **given: Any) -> S:
    """An instance of the settings dataclass `cls` read from the environment.

    `given` values are used as they are; `defaults` replace declared defaults (a variable
    that is set still wins); parts declared with `loaded` are got from their reader.
    """
    defaults = dict(defaults or {})
    placeholders = {key.upper(): value.upper() for key, value in {**defaults, **given}.items()
                    if isinstance(value, str)}
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in given:
            continue
        if _LOADER in f.metadata:
            values[f.name] = f.metadata[_LOADER]()
            continue
        declared = f.metadata.get(_SETTING)
        value = declared.lookup(**placeholders) if declared is not None else MISSING
        if value is not MISSING:
            values[f.name] = value
        elif f.name in defaults:
            values[f.name] = defaults[f.name]
    unknown = set(defaults) - {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if unknown:
        raise TypeError(f"{cls.__name__} has no fields {sorted(unknown)}")
    return cls(**values, **given)


# --------------------------------------------------------------------- the platform


def _safeguard_names(text: str) -> frozenset[str]:
    names = frozenset(comma_list(text))
    unknown = names - set(SAFEGUARDS)
    if unknown:
        raise ValueError(f"unknown {sorted(unknown)}; known: {', '.join(SAFEGUARDS)}")
    return names


# Safeguards a chaos experiment may turn off on purpose, to show that the experiment
# guarding each then deviates (docs/chaos.md). Never set in a deployment.
SAFEGUARDS = ("breakers", "home-fallback")
DISABLED_SAFEGUARDS = Setting(("MURMUR_DISABLE_SAFEGUARDS",), frozenset(), _safeguard_names,
                              "safeguards turned off (comma-separated); never in a deployment")
BIND_HOST = Setting(("MURMUR_BIND_HOST",), "127.0.0.1", str,
                    "address the processes listen on: loopback locally, 0.0.0.0 in a container")
PORT = Setting(("MURMUR_PORT",), MISSING, int,
               "port this process listens on (default: its service's port in the profile)")
GUNICORN_WORKERS = Setting(("GUNICORN_WORKERS",), 2, int,
                           "gunicorn worker processes of an HTTP service")
GUNICORN_THREADS = Setting(("GUNICORN_THREADS",), 8, int,
                           "threads per gunicorn worker (requests one worker serves at once)")
SERVICE_URL = Setting(("MURMUR_{NAME}_URL",), MISSING, str,
                      "base URL of service NAME as its callers see it "
                      "(default: its port on 127.0.0.1 in the profile)")
CELEBRITY_THRESHOLD_DEFAULT = 2000
HOME_TIMELINE_CAP_DEFAULT = 800
HOME_TIMELINE_CAP = Setting(("HOME_TIMELINE_CAP",), HOME_TIMELINE_CAP_DEFAULT, int,
                            "entries kept per home timeline (Twitter kept 800)")
# One key for users and timeline: a service that serves pages refuses to start without it,
# and every replica must have the same one (a cursor is opened by whichever replica gets
# the next page's request). Locally the platform generates it at first start.
CURSOR_KEY = Setting(("MURMUR_CURSOR_KEY",), "", str,
                     "secret sealing page cursors, the same in every replica "
                     "(else the generated secret)", secret_file="cursor-key")


def disabled_safeguards() -> frozenset[str]:
    """The safeguards MURMUR_DISABLE_SAFEGUARDS turns off (comma-separated; default none)."""
    return DISABLED_SAFEGUARDS.read()


def bind_host() -> str:
    """Address the service processes listen on: loopback locally, 0.0.0.0 in a container."""
    return BIND_HOST.read()


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


def jwt_keys_dir(profile: str | None = None) -> Path:
    """Folder of a profile's token-signing keys (default: this process's profile): the
    current private key `private.pem` and the accepted public keys `jwks.json`."""
    return secrets_dir() / "jwt" / (profile or PROFILE.read())



# ---------------------------------------------------------------------------- peers


@dataclass(frozen=True)
class PeerConfig:
    """How a process reaches one peer service (`common.client.HttpClient` takes it).

    A plain record here, read from no variable: each caller fills it from its own settings
    (the gateway's `DownstreamConfig` declares where each field is read from).
    """

    name: str
    base_url: str
    connect_timeout: float
    read_timeout: float
    pool_size: int
    # The breaker opens after `fail_max` failed calls in a row and lets one trial call
    # through after `reset_timeout` seconds.
    fail_max: int = 5
    reset_timeout: float = 5.0
    # An idempotent call is tried at most `retry_attempts` times, waiting a random time up
    # to retry_base * 2^n (at most retry_cap) seconds between tries.
    retry_attempts: int = 3
    retry_base: float = 0.05
    retry_cap: float = 0.5


# ------------------------------------------------------------------------- profiles


def _profile_name(text: str) -> str:
    if text not in PROFILES:
        raise ValueError(f"unknown profile; known: {', '.join(PROFILES)}")
    return text


@dataclass(frozen=True)
class Profile(Settings):
    """Where one profile keeps its data on the shared servers (defaults: its preset)."""

    name: str
    pg_database: str = setting("MURMUR_PG_DATABASE", doc="the profile's Postgres database")
    keyspace: str = setting("MURMUR_CASSANDRA_KEYSPACE", doc="the profile's Cassandra keyspace")
    topic_prefix: str = setting("MURMUR_TOPIC_PREFIX", doc="prefix of the profile's Kafka topics")
    redis_db: int = setting("MURMUR_REDIS_DB", parse=int, doc="the profile's Redis database")
    http_port: int = setting("MURMUR_HTTP_PORT", parse=int,
                             doc="nginx listen port of this profile's app tier")
    port_offset: int  # added to each service's base port (not a setting)
    # Low in the test profile so end-to-end tests can make a celebrity with a few follows.
    celebrity_threshold: int = setting(
        "CELEBRITY_THRESHOLD", CELEBRITY_THRESHOLD_DEFAULT, parse=int,
        doc="authors with this many followers are merged at read time, not fanned out")

    def port_of(self, service: str) -> int:
        """The port service `service` listens on in this profile."""
        return SERVICE_PORTS[service] + self.port_offset


# The presets: `profile()` starts from the one MURMUR_PROFILE names.
PROFILES = {
    "dev": Profile("dev", "murmur", "murmur", "", 0, 8080, 0),
    "test": Profile("test", "murmur_test", "murmur_test", "test.", 1, 8090, 10,
                    celebrity_threshold=5),
}
PROFILE = Setting(("MURMUR_PROFILE",), "dev", _profile_name,
                  "the profile whose data this process uses: " + ", ".join(PROFILES))

# Base ports of the services; a profile adds its port_offset (dev 0, test 10). The relays
# and timeline's author projection serve only /healthz, /readyz and /metrics on theirs.
SERVICE_PORTS = {"gateway": 18001, "gateway-2": 18002, "users": 18101, "users-relay": 18102,
                 "timeline": 18201, "timeline-relay": 18202, "timeline-authors": 18203,
                 "fanout": 18301}


def profile() -> Profile:
    """The active profile (MURMUR_PROFILE, default 'dev'), with env overrides applied."""
    return load(Profile, defaults=dataclasses.asdict(PROFILES[PROFILE.read()]))


def service_port(name: str) -> int:
    """Port this profile runs service `name` on (MURMUR_PORT overrides, e.g. for a bench)."""
    return PORT.read(default=profile().port_of(name))


def service_url(name: str) -> str:
    """Base URL of service `name` as seen by its callers (MURMUR_<NAME>_URL overrides)."""
    return SERVICE_URL.read(default=f"http://127.0.0.1:{profile().port_of(name)}",
                            NAME=name.upper())


def celebrity_threshold() -> int:
    """Authors with at least this many followers are merged at read time, not fanned out.

    CELEBRITY_THRESHOLD overrides the profile's value (2000 in dev, 5 in test).
    """
    return profile().celebrity_threshold


def home_timeline_cap() -> int:
    """Entries kept per home timeline (Twitter kept 800)."""
    return HOME_TIMELINE_CAP.read()


# --------------------------------------------------------------------------- stores


@dataclass(frozen=True)
class Stores(Settings):
    """Addresses and credentials of the backing stores, as a service sees them.

    `host` (MURMUR_STORE_HOST) is where every store is by default (the local platform runs
    them all on one machine); each store's own host overrides it (MURMUR_PG_HOST,
    MURMUR_REDIS_HOST, MURMUR_CASSANDRA_HOSTS, MURMUR_KAFKA_BOOTSTRAP), as on Kubernetes,
    where each is a Service of its own.
    """

    profile: Profile = loaded(profile, doc="the profile whose data the stores hold")
    host: str = setting("MURMUR_STORE_HOST", "127.0.0.1",
                        doc="host of every store that has no host of its own")
    pg_port: int = setting("MURMUR_PG_PORT", 15432, parse=int, doc="Postgres port")
    pg_user: str = setting("MURMUR_PG_USER", "murmur", doc="Postgres user")
    pg_password: str = setting("MURMUR_PG_PASSWORD", "", secret_file="postgres-password",
                               doc="Postgres password (else the generated secret)")
    pg_database: str = computed(lambda s: s.profile.pg_database, doc="the profile's database")
    pg_pool_size: int = setting("MURMUR_PG_POOL_SIZE", 8, parse=int,
                                doc="Postgres connections a process holds at most")
    redis_port: int = setting("MURMUR_REDIS_PORT", 16379, parse=int, doc="Redis port")
    redis_db: int = computed(lambda s: s.profile.redis_db, doc="the profile's Redis database")
    kafka_port: int = setting("MURMUR_KAFKA_PORT", 19092, parse=int,
                              doc="Kafka port (of a server named without one)")
    topic_prefix: str = computed(lambda s: s.profile.topic_prefix, doc="the profile's prefix")
    kafka_partitions: int = setting("MURMUR_KAFKA_PARTITIONS", 6, parse=int,
                                    doc="partitions of the topics Murmur creates")
    cassandra_port: int = setting("MURMUR_CASSANDRA_PORT", 19042, parse=int,
                                  doc="Cassandra native port")
    keyspace: str = computed(lambda s: s.profile.keyspace, doc="the profile's keyspace")
    cassandra_replication: int = setting("MURMUR_CASSANDRA_RF", 1, parse=int,
                                         doc="replication factor of the keyspace")
    cassandra_consistency: str = setting("MURMUR_CASSANDRA_CONSISTENCY", "ONE",
                                         doc="consistency level of reads and writes")
    connect_timeout: float = setting("MURMUR_CONNECT_TIMEOUT", 3.0, parse=float,
                                     doc="seconds to connect to a store")
    pg_host: str = setting("MURMUR_PG_HOST", lambda s: s.host, doc="Postgres host")
    redis_host: str = setting("MURMUR_REDIS_HOST", lambda s: s.host, doc="Redis host")
    # A server named without a port gets kafka_port (see `kafka_bootstrap`).
    kafka_servers: str = setting("MURMUR_KAFKA_BOOTSTRAP", "",
                                 parse=lambda text: ",".join(comma_list(text)),
                                 doc="Kafka servers, host[:port],...; '' means host:kafka_port")
    kafka_replication: int = setting("MURMUR_KAFKA_REPLICATION", 1, parse=int,
                                     doc="replication factor of the topics Murmur creates")
    cassandra_hosts: tuple[str, ...] = setting(
        "MURMUR_CASSANDRA_HOSTS", lambda s: (s.host,), parse=comma_list,
        doc="the Cassandra driver's contact points (comma-separated)")

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
        if not self.kafka_servers:
            return f"{self.host}:{self.kafka_port}"
        return ",".join(server if ":" in server else f"{server}:{self.kafka_port}"
                        for server in self.kafka_servers.split(","))

    def topic(self, name: str) -> str:
        """Topic name with the profile's prefix (e.g. 'test.tweets.v1')."""
        return f"{self.topic_prefix}{name}"


def stores() -> Stores:
    """Store settings from the environment, with the local platform's defaults."""
    return load(Stores)
