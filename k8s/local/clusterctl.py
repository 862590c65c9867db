"""Run Murmur's local Kubernetes: one real node, built from upstream sources, on this host.

Usage: clusterctl.py up | down | status | logs [NAME] | load ARCHIVE... | kubeconfig | check-host

kind and minikube need a Docker engine; this cluster needs none. Its parts run as host
processes under their own supervisord, on their own ports, beside the `make up` stack:

  containerd (Debian)  etcd (Debian)  kube-apiserver  kube-controller-manager  kube-scheduler
  kubelet  kube-proxy (iptables)  kube-router (NetworkPolicy enforcement only)

and, as pods, CoreDNS and Rancher's local-path-provisioner (the default StorageClass
`standard`, as on kind). Kubernetes, CoreDNS, kube-router, the provisioner and the pause
program are built from the Go module proxy by build/build.sh and cached outside the clone.

The node's address is a /32 alias on `lo` (this kernel has no dummy links); pods reach the
API server there. The host reaches everything on 127.0.0.1: the API server on :16443 and the
NodePorts (kube-proxy's localhostNodePorts). `up` records the host state it is about to
change (sysctls, the alias, folders outside the data folder); `down` deletes the cluster and
puts every recorded value back; `check-host` compares the host with that record.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import ipaddress
import json
import os
import resource
import shlex
import shutil
import socket
import ssl
import string
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "services"))

from common import config  # noqa: E402

STATE = config.murmur_home() / "k8s"  # the cluster's data: certificates, etcd, volumes, logs
# Sockets live under /run: the clone's path may be too long for a unix socket's 108 bytes.
RUN = Path(config.env("MURMUR_K8S_RUN", "/run/murmur-k8s"))
CACHE_HOME = Path(config.env("MURMUR_CACHE_HOME", str(
    Path(config.env("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "murmur")))
PKI, CONF, LOGS = STATE / "pki", STATE / "conf", STATE / "logs"
KUBECONFIG = STATE / "kubeconfig"
HOST_RECORD = STATE / "host-record.json"

NODE = "murmur-local"
NODE_IP = config.env("MURMUR_K8S_NODE_IP", "10.250.0.1")
POD_CIDR, NODE_POD_CIDR = "10.244.0.0/16", "10.244.0.0/24"
SERVICE_CIDR, API_SERVICE_IP, DNS_IP = "10.96.0.0/16", "10.96.0.1", "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
BRIDGE = "murmur-cni0"
PORTS = {"apiserver": 16443, "etcd": 12379, "etcd-peer": 12380, "kubelet": 10250,
         "kubelet-healthz": 10248, "proxy-healthz": 10256, "proxy-metrics": 10249,
         "controller-manager": 10257, "scheduler": 10259, "containerd-stream": 10010,
         "kube-router-health": 20244}
# The sysctls kubelet, kube-proxy and the CNI bridge change; `down` restores them.
SYSCTLS = ["net/ipv4/ip_forward", "vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops",
           "net/ipv4/conf/all/route_localnet", "net/bridge/bridge-nf-call-iptables",
           "net/bridge/bridge-nf-call-ip6tables"]
# Folders outside the data folder that the runtime writes whatever it is told; removed by
# `down` when `up` found them absent.
HOST_DIRS = ["/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/var/lib/cni",
             "/etc/cni", "/run/containerd", "/run/netns", "/opt/cni"]
APT_PACKAGES = {"containerd": "containerd", "runc": "runc", "iptables": "iptables",
                "ipset": "ipset", "conntrack": "conntrack", "buildah": "buildah",
                "etcd": "etcd-server", "/usr/lib/cni/bridge": "containernetworking-plugins",
                "/bin/busybox": "busybox-static"}


def log(step: str, message: str) -> None:
    """One progress line, as `make up` prints them."""
    print(f"  {step:<24} {message}", flush=True)


def run(cmd: list[str], check: bool = True, quiet: bool = False, **kw) -> subprocess.CompletedProcess:
    """Run a command; its output is captured when `quiet`."""
    if quiet:
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("text", True)
    return subprocess.run(cmd, check=check, **kw)


# ----------------------------------------------------------------------- install and build


def ensure_packages() -> None:
    """Install the Debian packages the node needs, keeping them from starting services."""
    missing = sorted({pkg for probe, pkg in APT_PACKAGES.items()
                      if not (Path(probe).exists() if probe.startswith("/") else shutil.which(probe))})
    if not missing:
        return
    log("apt", " ".join(missing))
    policy = Path("/usr/sbin/policy-rc.d")
    created = not policy.exists()
    if created:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run(["apt-get", "update", "-qq"], env=env)
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env,
            stdout=subprocess.DEVNULL)
    finally:
        if created:
            policy.unlink()


def build() -> dict[str, Path]:
    """Build (or find cached) every binary; returns component -> folder."""
    out = run(["bash", str(HERE / "build/build.sh")], stdout=subprocess.PIPE, text=True).stdout
    return {k: Path(v) for k, v in (line.split("=", 1) for line in out.split())}


def bin_path(bins: dict[str, Path], name: str) -> str:
    """The path of one built binary."""
    for folder in bins.values():
        if (folder / name).exists():
            return str(folder / name)
    raise KeyError(name)


@dataclass(frozen=True)
class SystemImage:
    """An image the cluster itself runs, made from one static binary with buildah."""

    name: str
    component: str  # the build.sh component whose folder holds the binary
    files: dict[str, str]  # path in the image -> path on the host
    entrypoint: list[str]
    user: str = "65532"

    def ref(self, bins: dict[str, Path]) -> str:
        """localhost/<name>:<build key> — a new build gives a new tag."""
        return f"localhost/{self.name}:{bins[self.component].name.rsplit('-', 1)[-1]}"


def system_images(bins: dict[str, Path]) -> list[SystemImage]:
    """pause, CoreDNS, the provisioner and its busybox helper."""
    return [
        SystemImage("murmur-pause", "pause", {"/pause": str(bins["pause"] / "pause")}, ["/pause"]),
        SystemImage("murmur-coredns", "coredns", {"/coredns": str(bins["coredns"] / "corednsbuild")},
                    ["/coredns"]),
        SystemImage("murmur-local-path", "local-path",
                    {"/usr/bin/local-path-provisioner":
                     str(bins["local-path"] / "local-path-provisioner")}, [], user="0"),
        SystemImage("murmur-busybox", "pause", {"/bin/busybox": "/bin/busybox"}, [], user="0"),
    ]


def image_archive(image: SystemImage, bins: dict[str, Path]) -> Path:
    """A docker-archive of `image`, built once per binary and cached outside the clone."""
    ref = image.ref(bins)
    archive = CACHE_HOME / "k8s/images" / f"{image.name}-{ref.rsplit(':', 1)[1]}.tar"
    if archive.exists():
        return archive
    log(f"image {image.name}", "building with buildah")
    archive.parent.mkdir(parents=True, exist_ok=True)
    ctr = run(["buildah", "from", "scratch"], quiet=True).stdout.strip()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for dest, src in image.files.items():
                (root / dest.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, root / dest.lstrip("/"))
            if image.name == "murmur-busybox":
                # Every applet as a link; `busybox --list` names busybox itself, which must
                # stay the binary and not become a link to itself.
                for applet in run(["/bin/busybox", "--list"], quiet=True).stdout.split():
                    if applet != "busybox":
                        (root / "bin" / applet).symlink_to("busybox")
            run(["buildah", "copy", ctr, f"{root}/.", "/"], quiet=True)
        cfg = ["--user", image.user, "--env", "PATH=/usr/bin:/bin",
               "--label", f"org.opencontainers.image.title={image.name}"]
        cfg += ["--entrypoint", json.dumps(image.entrypoint)] if image.entrypoint else []
        run(["buildah", "config", *cfg, "--cmd", "", ctr], quiet=True)
        run(["buildah", "commit", "-q", ctr, ref], quiet=True)
    finally:
        run(["buildah", "rm", ctr], quiet=True, check=False)
    tmp = archive.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    run(["buildah", "push", "-q", ref, f"docker-archive:{tmp}:{ref}"], quiet=True)
    tmp.rename(archive)
    return archive


# --------------------------------------------------------------------------- certificates


def pki() -> None:
    """A CA and every certificate the cluster needs, made at first start (ECDSA P-256)."""
    if (PKI / "sa.pub").exists():
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    PKI.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)

    def write_key(name: str, key) -> None:
        path = PKI / f"{name}.key"
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)

    def name_of(cn: str, org: str | None = None) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name_of("murmur-local-ca")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    (PKI / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    write_key("ca", ca_key)

    def issue(name: str, cn: str, org: str | None = None, server: bool = False,
              client: bool = False, dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + \
                 ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
        builder = (x509.CertificateBuilder().subject_name(name_of(cn, org)).issuer_name(ca_name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=825))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
        if dns or ips:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(d) for d in dns]
                + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        (PKI / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(name, key)

    issue("apiserver", "kube-apiserver", server=True,
          dns=("kubernetes", "kubernetes.default", "kubernetes.default.svc",
               f"kubernetes.default.svc.{CLUSTER_DOMAIN}", "localhost", NODE),
          ips=(API_SERVICE_IP, NODE_IP, "127.0.0.1"))
    issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters", client=True)
    issue("admin", "murmur-admin", "system:masters", client=True)
    issue("controller-manager", "system:kube-controller-manager", client=True)
    issue("scheduler", "system:kube-scheduler", client=True)
    issue("kube-proxy", "system:kube-proxy", client=True)
    issue("kube-router", "murmur:kube-router", client=True)
    issue("kubelet", f"system:node:{NODE}", "system:nodes", client=True)
    issue("kubelet-server", NODE, server=True, dns=(NODE, "localhost"), ips=(NODE_IP, "127.0.0.1"))
    sa_key = ec.generate_private_key(ec.SECP256R1())
    write_key("sa", sa_key)
    (PKI / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def kubeconfig(user: str, path: Path) -> None:
    """A kubeconfig for one of the certificates above, talking to the API on 127.0.0.1."""
    def b64(name: str) -> str:
        return base64.b64encode((PKI / name).read_bytes()).decode()

    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "murmur-local",
        "clusters": [{"name": "murmur-local", "cluster": {
            "server": f"https://127.0.0.1:{PORTS['apiserver']}",
            "certificate-authority-data": b64("ca.crt")}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(f"{user}.crt"),
                                          "client-key-data": b64(f"{user}.key")}}],
        "contexts": [{"name": "murmur-local", "context": {
            "cluster": "murmur-local", "user": user, "namespace": "default"}}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")  # JSON is YAML
    path.chmod(0o600)


# ------------------------------------------------------------------------- configurations


def write(path: Path, text: str) -> None:
    """Write a rendered file (creating its folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def render_configs(bins: dict[str, Path], pause_ref: str) -> None:
    """containerd, CNI, kubelet and kube-proxy configurations and every kubeconfig."""
    write(CONF / "containerd.toml", f"""\
version = 2
root = "{STATE}/containerd"
state = "{RUN}/containerd"
[grpc]
  address = "{RUN}/containerd.sock"
[ttrpc]
  address = "{RUN}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{STATE}/containerd-opt"
  [plugins."io.containerd.grpc.v1.cri"]
    # Nothing can be pulled here: the sandbox image is the locally built pause program.
    sandbox_image = "{pause_ref}"
    # Root on this host lacks CAP_SYS_RESOURCE: runc cannot set a negative oom_score_adj
    # (kubelet asks -998 for the sandbox), so clamp to containerd's own instead.
    restrict_oom_score_adj = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "{PORTS['containerd-stream']}"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "{CONF}/cni"
""")
    write(CONF / "cni/10-murmur.conflist", json.dumps({
        "cniVersion": "1.0.0", "name": "murmur-local", "plugins": [
            {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
             "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": str(STATE / "cni-ipam"),
                      "ranges": [[{"subnet": NODE_POD_CIDR}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}}]}, indent=2))
    write(CONF / "kubelet.yaml", json.dumps({
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "address": NODE_IP, "port": PORTS["kubelet"],
        "healthzBindAddress": "127.0.0.1", "healthzPort": PORTS["kubelet-healthz"],
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(PKI / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(PKI / "kubelet-server.crt"),
        "tlsPrivateKeyFile": str(PKI / "kubelet-server.key"),
        # containerd 1.6 cannot tell kubelet its cgroup driver, and nothing runs systemd here.
        "cgroupDriver": "cgroupfs",
        "containerRuntimeEndpoint": f"unix://{RUN}/containerd.sock",
        "clusterDomain": CLUSTER_DOMAIN, "clusterDNS": [DNS_IP],
        "failSwapOn": False, "failCgroupV1": False,
        "podLogsDir": str(STATE / "pod-logs"),
        "resolvConf": str(CONF / "resolv.conf"),
        # Imported images can never be pulled again: keep image GC and disk eviction away
        # from them.
        "imageGCHighThresholdPercent": 99, "imageGCLowThresholdPercent": 98,
        "evictionHard": {"memory.available": "200Mi", "nodefs.available": "2%",
                         "imagefs.available": "2%"},
        "maxPods": 110, "serializeImagePulls": False,
        "rotateCertificates": False, "serverTLSBootstrap": False,
        "staticPodPath": "", "registerNode": True,
    }, indent=2))
    # Pods resolve through CoreDNS only; the host's resolver is of no use to them.
    write(CONF / "resolv.conf", "# no upstream resolver: nothing leaves the machine\n")
    write(CONF / "kube-proxy.yaml", json.dumps({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(CONF / "kube-proxy.kubeconfig")},
        "hostnameOverride": NODE, "mode": "iptables", "clusterCIDR": POD_CIDR,
        "bindAddress": NODE_IP,
        "healthzBindAddress": f"127.0.0.1:{PORTS['proxy-healthz']}",
        "metricsBindAddress": f"127.0.0.1:{PORTS['proxy-metrics']}",
        # NodePorts answer on the node alias and on 127.0.0.1 only, never on eth0.
        "nodePortAddresses": [f"{NODE_IP}/32", "127.0.0.1/32"],
        "iptables": {"localhostNodePorts": True, "masqueradeAll": False},
        # Zeros leave the host's conntrack sysctls alone.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
    }, indent=2))
    for user in ("admin", "controller-manager", "scheduler", "kube-proxy", "kubelet",
                 "kube-router"):
        kubeconfig(user, CONF / f"{user}.kubeconfig")
    kubeconfig("admin", KUBECONFIG)


@dataclass(frozen=True)
class Component:
    """One supervised host process and how to tell it is ready."""

    name: str
    command: list[str]
    ready: Callable[[], None]  # raises until ready
    timeout: float = 60.0
    stopwaitsecs: int = 15


def components(bins: dict[str, Path]) -> list[Component]:
    """Every host process, in start order."""
    b = lambda name: bin_path(bins, name)  # noqa: E731
    api = f"https://127.0.0.1:{PORTS['apiserver']}"
    kc = lambda user: str(CONF / f"{user}.kubeconfig")  # noqa: E731
    return [
        Component("containerd", ["containerd", "--config", str(CONF / "containerd.toml")],
                  ready_containerd, timeout=30),
        Component("etcd", [
            "etcd", "--name", NODE, "--data-dir", str(STATE / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{PORTS['etcd']}",
            "--advertise-client-urls", f"http://127.0.0.1:{PORTS['etcd']}",
            "--listen-peer-urls", f"http://127.0.0.1:{PORTS['etcd-peer']}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{PORTS['etcd-peer']}",
            "--initial-cluster", f"{NODE}=http://127.0.0.1:{PORTS['etcd-peer']}",
            "--initial-cluster-state", "new", "--log-level", "warn"],
            lambda: http_ok(f"http://127.0.0.1:{PORTS['etcd']}/health"), timeout=30),
        Component("kube-apiserver", [
            b("kube-apiserver"), f"--advertise-address={NODE_IP}", "--bind-address=0.0.0.0",
            f"--secure-port={PORTS['apiserver']}",
            f"--etcd-servers=http://127.0.0.1:{PORTS['etcd']}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--service-node-port-range=30000-32767",
            f"--client-ca-file={PKI}/ca.crt", f"--tls-cert-file={PKI}/apiserver.crt",
            f"--tls-private-key-file={PKI}/apiserver.key",
            f"--kubelet-client-certificate={PKI}/apiserver-kubelet-client.crt",
            f"--kubelet-client-key={PKI}/apiserver-kubelet-client.key",
            f"--kubelet-certificate-authority={PKI}/ca.crt",
            "--kubelet-preferred-address-types=InternalIP",
            f"--service-account-key-file={PKI}/sa.pub",
            f"--service-account-signing-key-file={PKI}/sa.key",
            f"--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true", "--profiling=false", "--v=1"],
            lambda: api_get("/readyz"), timeout=90),
        Component("kube-controller-manager", [
            b("kube-controller-manager"), f"--kubeconfig={kc('controller-manager')}",
            f"--authentication-kubeconfig={kc('controller-manager')}",
            f"--authorization-kubeconfig={kc('controller-manager')}",
            "--bind-address=127.0.0.1", f"--cluster-cidr={POD_CIDR}", "--allocate-node-cidrs=true",
            "--node-cidr-mask-size=24", f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--cluster-signing-cert-file={PKI}/ca.crt", f"--cluster-signing-key-file={PKI}/ca.key",
            f"--root-ca-file={PKI}/ca.crt", f"--service-account-private-key-file={PKI}/sa.key",
            "--use-service-account-credentials=true", "--leader-elect=false", "--profiling=false"],
            lambda: https_ok(f"https://127.0.0.1:{PORTS['controller-manager']}/healthz")),
        Component("kube-scheduler", [
            b("kube-scheduler"), f"--kubeconfig={kc('scheduler')}",
            f"--authentication-kubeconfig={kc('scheduler')}",
            f"--authorization-kubeconfig={kc('scheduler')}",
            "--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false"],
            lambda: https_ok(f"https://127.0.0.1:{PORTS['scheduler']}/healthz")),
        Component("kubelet", [
            b("kubelet"), f"--config={CONF}/kubelet.yaml", f"--kubeconfig={kc('kubelet')}",
            f"--root-dir={STATE}/kubelet", f"--node-ip={NODE_IP}", f"--hostname-override={NODE}",
            "--v=1"], ready_node_registered, timeout=60, stopwaitsecs=10),
        Component("kube-proxy", [b("kube-proxy"), f"--config={CONF}/kube-proxy.yaml"],
                  lambda: http_ok(f"http://127.0.0.1:{PORTS['proxy-healthz']}/healthz")),
        Component("kube-router", [
            b("kube-router"), f"--kubeconfig={kc('kube-router')}", f"--hostname-override={NODE}",
            "--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
            "--enable-cni=false", "--metrics-port=0",
            f"--health-port={PORTS['kube-router-health']}", "--v=1"],
            lambda: http_ok(f"http://127.0.0.1:{PORTS['kube-router-health']}/healthz")),
    ]


# ----------------------------------------------------------------------------- readiness


def ssl_context(client: str | None = "admin") -> ssl.SSLContext:
    """TLS to the API server with the cluster CA and, optionally, a client certificate."""
    ctx = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
    if client:
        ctx.load_cert_chain(str(PKI / f"{client}.crt"), str(PKI / f"{client}.key"))
    return ctx


def api_get(path: str) -> dict | str:
    """GET from the API server as the admin; JSON when it answers JSON."""
    url = f"https://127.0.0.1:{PORTS['apiserver']}{path}"
    with urllib.request.urlopen(url, timeout=5, context=ssl_context()) as resp:
        body = resp.read().decode()
    return json.loads(body) if body.startswith("{") else body


def http_ok(url: str) -> None:
    """Raise unless `url` answers 2xx."""
    with urllib.request.urlopen(url, timeout=3) as resp:
        resp.read()


def https_ok(url: str) -> None:
    """Raise unless a component's self-signed /healthz answers 2xx."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with urllib.request.urlopen(url, timeout=3, context=ctx) as resp:
        resp.read()


def ready_containerd() -> None:
    """containerd answers on its socket."""
    run(ctr_cmd("version"), quiet=True)


def ready_node_registered() -> None:
    """The node object exists (kubelet registered)."""
    api_get(f"/api/v1/nodes/{NODE}")


def node_ready() -> None:
    """Raise unless the node's Ready condition is True."""
    node = api_get(f"/api/v1/nodes/{NODE}")
    cond = {c["type"]: c for c in node["status"].get("conditions", [])}.get("Ready", {})
    if cond.get("status") != "True":
        raise RuntimeError(f"node not Ready: {cond.get('reason', 'no status yet')}: "
                           f"{cond.get('message', '')}")


def deployment_available(namespace: str, name: str) -> None:
    """Raise unless a Deployment has all of its replicas available."""
    dep = api_get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    want, have = dep["spec"].get("replicas", 1), dep["status"].get("availableReplicas", 0)
    if have < want:
        raise RuntimeError(f"{have}/{want} replicas available")


def dns_answers() -> None:
    """CoreDNS resolves the API server's Service name through the cluster DNS address."""
    name = f"kubernetes.default.svc.{CLUSTER_DOMAIN}"
    query = struct.pack(">HHHHHH", 0x4d55, 0x0100, 1, 0, 0, 0)
    query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    query += struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(query, (DNS_IP, 53))
        answer = sock.recv(512)
    if struct.unpack(">H", answer[6:8])[0] < 1 or answer[-4:] != socket.inet_aton(API_SERVICE_IP):
        raise RuntimeError(f"{name} did not resolve to {API_SERVICE_IP}")


def wait_for(what: str, check: Callable[[], None], timeout: float, log_file: Path | None = None,
             t0: float | None = None) -> None:
    """Poll `check` until it passes; on timeout exit with the reason and the log's tail."""
    start = time.monotonic()
    deadline = start + timeout
    last = ""
    while True:
        try:
            check()
            log(what, f"ready ({time.monotonic() - (t0 or start):.1f}s)")
            return
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            last = f"{type(exc).__name__}: {exc}"
        if log_file and process_state(log_file.stem) in ("FATAL", "EXITED", "BACKOFF"):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    msg = [f"ERROR: {what} did not become ready within {timeout:.0f}s: {last}"]
    if log_file and log_file.exists():
        msg += [f"--- last lines of {log_file} ---", tail(log_file, 25)]
    sys.exit("\n".join(msg))


def tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a file."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------------------- supervisor


def supervisor() -> xmlrpc.client.ServerProxy:
    """XML-RPC to the cluster's supervisord over its unix socket."""
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{RUN}/supervisor.sock")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def supervisor_running() -> bool:
    """Whether the cluster's supervisord answers."""
    try:
        supervisor().supervisor.getState()
        return True
    except (OSError, xmlrpc.client.Error):
        return False


def process_state(name: str) -> str:
    """A program's supervisord state name, UNKNOWN when there is none."""
    try:
        return supervisor().supervisor.getProcessInfo(name)["statename"]
    except (OSError, xmlrpc.client.Error):
        return "UNKNOWN"


def supervisord_conf(comps: list[Component]) -> str:
    """supervisord's configuration: every component, started by `up` in order."""
    env = "PATH=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\""
    lines = ["; Rendered by k8s/local/clusterctl.py; edits are overwritten.",
             "[unix_http_server]", f"file={RUN}/supervisor.sock", "chmod=0700", "",
             "[supervisord]", f"logfile={LOGS}/supervisord.log", f"pidfile={RUN}/supervisord.pid",
             "logfile_maxbytes=5MB", "logfile_backups=1", f"childlogdir={LOGS}",
             f"minfds={min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1])}", "user=root", "",
             "[rpcinterface:supervisor]",
             "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
             "[supervisorctl]", f"serverurl=unix://{RUN}/supervisor.sock", ""]
    for comp in comps:
        lines += [f"[program:{comp.name}]", "command=" + " ".join(comp.command),
                  "autostart=false", "autorestart=true", "startsecs=1", "startretries=3",
                  "stopsignal=TERM", f"stopwaitsecs={comp.stopwaitsecs}", "stopasgroup=true",
                  "killasgroup=true", "redirect_stderr=true",
                  f"stdout_logfile={LOGS}/{comp.name}.log", "stdout_logfile_maxbytes=20MB",
                  "stdout_logfile_backups=1", f"environment={env}", ""]
    return "\n".join(lines)


def ensure_supervisord(comps: list[Component]) -> None:
    """Start the cluster's supervisord with the current configuration."""
    write(CONF / "supervisord.conf", supervisord_conf(comps))
    if supervisor_running():
        run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(CONF / "supervisord.conf"),
             "update"], quiet=True)
        return
    (RUN / "supervisor.sock").unlink(missing_ok=True)
    run([sys.executable, "-m", "supervisor.supervisord", "-c", str(CONF / "supervisord.conf")])
    deadline = time.monotonic() + 15
    while not supervisor_running():
        if time.monotonic() > deadline:
            sys.exit(f"ERROR: supervisord did not start; see {LOGS}/supervisord.log")
        time.sleep(0.1)


def start(comp: Component, t0: float) -> None:
    """Start one component unless it runs, and wait until it is ready."""
    if process_state(comp.name) not in ("RUNNING", "STARTING"):
        supervisor().supervisor.startProcess(comp.name, False)
    wait_for(comp.name, comp.ready, comp.timeout, LOGS / f"{comp.name}.log", t0)


# ---------------------------------------------------------------------------- host state


def sysctl_path(name: str) -> Path:
    """/proc/sys path of a sysctl written with slashes."""
    return Path("/proc/sys") / name


def read_sysctls() -> dict[str, str]:
    """The current value of every sysctl the cluster may change."""
    return {n: sysctl_path(n).read_text().strip() for n in SYSCTLS if sysctl_path(n).exists()}


def host_snapshot() -> dict:
    """What `down` must restore and `check-host` compares: sysctls, links, addresses, chains."""
    addrs = run(["ip", "-o", "addr", "show", "dev", "lo"], quiet=True).stdout
    links = sorted(line.split(":")[1].strip().split("@")[0]
                   for line in run(["ip", "-o", "link"], quiet=True).stdout.splitlines())
    return {"sysctls": read_sysctls(), "lo_alias": f"{NODE_IP}/32" in addrs, "links": links,
            "dirs": {d: Path(d).exists() for d in HOST_DIRS},
            "chains": iptables_chains(), "rules": iptables_rules(), "ipsets": ipsets()}


BUILTIN_CHAINS = {"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"}


def iptables_save() -> list[tuple[str, str, str]]:
    """(tool, table, line) of every chain declaration and rule in iptables and ip6tables."""
    lines = []
    for tool in ("iptables", "ip6tables"):
        if not shutil.which(f"{tool}-save"):
            continue
        table = ""
        for line in (run([f"{tool}-save"], quiet=True, check=False).stdout or "").splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith((":", "-A ")):
                lines.append((tool, table, line))
    return lines


def iptables_chains() -> list[str]:
    """`tool:table:chain` of every chain that is not built in (a table's built-in chains
    appear as soon as anything loads the table, so they say nothing)."""
    return sorted(f"{tool}:{table}:{line[1:].split()[0]}" for tool, table, line in iptables_save()
                  if line.startswith(":") and line[1:].split()[0] not in BUILTIN_CHAINS)


def iptables_rules() -> list[str]:
    """`tool:table:rule` of every rule."""
    return sorted(f"{tool}:{table}:{line}" for tool, table, line in iptables_save()
                  if line.startswith("-A "))


def ipsets() -> list[str]:
    """Names of the host's ipsets."""
    if not shutil.which("ipset"):
        return []
    return sorted(run(["ipset", "list", "-n"], quiet=True, check=False).stdout.split())


def prepare_host() -> None:
    """Record the host once, then add the node alias and the kernel settings pods need."""
    if not HOST_RECORD.exists():
        HOST_RECORD.parent.mkdir(parents=True, exist_ok=True)
        HOST_RECORD.write_text(json.dumps(host_snapshot(), indent=2))
    addrs = run(["ip", "-o", "addr", "show", "dev", "lo"], quiet=True).stdout
    if f"{NODE_IP}/32" not in addrs:
        run(["ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo"])
    # Pods on the bridge must pass through iptables for Services and NetworkPolicies.
    for name in ("net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables"):
        if sysctl_path(name).exists():
            sysctl_path(name).write_text("1")


def restore_kernel_tunables() -> None:
    """kubelet sets vm.overcommit_memory and kernel.panic* at start: put the host's back."""
    record = json.loads(HOST_RECORD.read_text())["sysctls"]
    for name in ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops"):
        if name in record and sysctl_path(name).read_text().strip() != record[name]:
            sysctl_path(name).write_text(record[name])


# -------------------------------------------------------------------------------- images


def ctr_cmd(*args: str) -> list[str]:
    """A `ctr` command against the cluster's containerd, in kubelet's namespace."""
    return ["ctr", "--address", str(RUN / "containerd.sock"), "--namespace", "k8s.io", *args]


def present_images() -> set[str]:
    """References of the images containerd holds."""
    out = run(ctr_cmd("images", "list", "-q"), quiet=True).stdout
    return set(out.split())


def load(archives: list[Path], refs: list[str] | None = None) -> None:
    """Import image archives into the node (skipping references it already has)."""
    have = present_images()
    for i, archive in enumerate(archives):
        if refs and refs[i] in have:
            continue
        t = time.monotonic()
        run(ctr_cmd("images", "import", "--no-unpack=false", str(archive)), quiet=True)
        log(f"load {archive.name[:18]}", f"imported in {time.monotonic() - t:.1f}s")


# --------------------------------------------------------------------------------- kubectl


def kubectl(bins: dict[str, Path] | None, *args: str, **kw) -> subprocess.CompletedProcess:
    """kubectl (the built one) against the cluster as its admin."""
    exe = bin_path(bins, "kubectl") if bins else "kubectl"
    return run([exe, f"--kubeconfig={KUBECONFIG}", *args], **kw)


def apply_template(bins: dict[str, Path], template: Path, **values: str) -> None:
    """kubectl apply a manifest from k8s/local/addons with ${NAME} placeholders filled."""
    text = string.Template(template.read_text()).substitute(values)
    kubectl(bins, "apply", "--server-side", "--force-conflicts", "-f", "-", input=text,
            text=True, quiet=True)


KUBE_ROUTER_RBAC = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "murmur:kube-router"}
rules:
  - apiGroups: [""]
    resources: [namespaces, pods, services, nodes, endpoints]
    verbs: [list, get, watch]
  - apiGroups: [networking.k8s.io]
    resources: [networkpolicies]
    verbs: [list, get, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, get, watch]
  - apiGroups: [""]
    resources: [nodes]
    verbs: [patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "murmur:kube-router"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "murmur:kube-router"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "murmur:kube-router"}]
"""


# -------------------------------------------------------------------------------- commands


def cmd_up() -> None:
    """Build what is missing, start every part, and wait for a Ready node with DNS."""
    if os.geteuid() != 0:
        sys.exit("the local cluster runs containers and changes iptables: run it as root")
    t0 = time.monotonic()
    ensure_packages()
    bins = build()
    images = system_images(bins)
    archives = [image_archive(img, bins) for img in images]
    for d in (STATE, CONF, LOGS, RUN):
        d.mkdir(parents=True, exist_ok=True)
    prepare_host()
    pki()
    render_configs(bins, images[0].ref(bins))
    (STATE / "run").unlink(missing_ok=True)
    (STATE / "run").symlink_to(RUN)  # where the docs and `make images` find the socket
    comps = components(bins)
    ensure_supervisord(comps)
    for comp in comps:
        if comp.name == "kube-proxy":
            restore_kernel_tunables()  # kubelet wrote them while registering
        if comp.name == "kube-router":
            kubectl(bins, "apply", "-f", "-", input=KUBE_ROUTER_RBAC, text=True, quiet=True)
        start(comp, t0)
        if comp.name == "containerd":
            load(archives, [img.ref(bins) for img in images])
    wait_for("node Ready", node_ready, 60, LOGS / "kubelet.log", t0)
    restore_kernel_tunables()
    apply_template(bins, HERE / "addons/coredns.yaml", IMAGE=images[1].ref(bins), DNS_IP=DNS_IP,
                   CLUSTER_DOMAIN=CLUSTER_DOMAIN)
    apply_template(bins, HERE / "addons/local-path.yaml", IMAGE=images[2].ref(bins),
                   HELPER_IMAGE=images[3].ref(bins), VOLUME_DIR=str(STATE / "volumes"))
    wait_for("coredns", lambda: deployment_available("kube-system", "coredns"), 90, None, t0)
    wait_for("cluster DNS", dns_answers, 30, None, t0)
    wait_for("storage provisioner",
             lambda: deployment_available("local-path-storage", "local-path-provisioner"),
             60, None, t0)
    version = api_get("/version")["gitVersion"]
    print(f"\nLocal cluster up in {time.monotonic() - t0:.1f}s: node {NODE} Ready, "
          f"Kubernetes {version}, CoreDNS answering.\n"
          f"  export KUBECONFIG={KUBECONFIG}\n"
          f"  make deploy      # Murmur's chart on it; the API then answers on "
          f"http://127.0.0.1:30080/api/v1", flush=True)


def cmd_down() -> None:
    """Delete the cluster and put the host back as `up` found it."""
    t0 = time.monotonic()
    if supervisor_running():
        server = supervisor()
        # kubelet first: nothing restarts the containers removed below.
        for name in ("kube-router", "kube-proxy", "kubelet", "kube-scheduler",
                     "kube-controller-manager", "kube-apiserver", "etcd"):
            if process_state(name) in ("RUNNING", "STARTING", "BACKOFF"):
                server.supervisor.stopProcess(name, True)
        if process_state("containerd") == "RUNNING":
            remove_containers()
        server.supervisor.stopAllProcesses(True)
        try:
            server.supervisor.shutdown()
        except (OSError, xmlrpc.client.Error):
            pass
        deadline = time.monotonic() + 20
        while supervisor_running() and time.monotonic() < deadline:
            time.sleep(0.2)
        log("processes", "stopped")
    kill_leftover_shims()
    cleanup_by_owners()
    clean_network()
    unmount_under([STATE, RUN, Path("/run/containerd"), Path("/run/netns")])
    restore_host()
    # The cluster is gone; the image store stays, so the next `up` imports nothing.
    for path in STATE.iterdir() if STATE.exists() else []:
        if path.name not in ("containerd", "logs", "host-record.json"):
            remove(path)
    remove(RUN)
    HOST_RECORD.unlink(missing_ok=True)
    print(f"Local cluster deleted in {time.monotonic() - t0:.1f}s; host restored.")


def remove(path: Path) -> None:
    """Remove a file, link or folder tree if it exists."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def remove_containers() -> None:
    """Kill every task and remove every container in kubelet's namespace (keeps images)."""
    tasks = run(ctr_cmd("tasks", "list", "-q"), quiet=True, check=False).stdout.split()
    for task in tasks:
        run(ctr_cmd("tasks", "kill", "-s", "SIGKILL", task), quiet=True, check=False)
    deadline = time.monotonic() + 15
    while tasks and time.monotonic() < deadline:
        out = run(ctr_cmd("tasks", "list"), quiet=True, check=False).stdout
        if "RUNNING" not in out:
            break
        time.sleep(0.2)
    for task in tasks:
        run(ctr_cmd("tasks", "delete", "-f", task), quiet=True, check=False)
    containers = run(ctr_cmd("containers", "list", "-q"), quiet=True, check=False).stdout.split()
    if containers:
        run(ctr_cmd("containers", "delete", *containers), quiet=True, check=False)
    log("containers", f"{len(containers)} removed")


def kill_leftover_shims() -> None:
    """containerd-shim processes of this cluster outlive containerd: end them."""
    out = run(["pgrep", "-f", f"containerd-shim.*-address {RUN}/"], quiet=True, check=False).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass


def cleanup_by_owners() -> None:
    """kube-proxy and kube-router remove their own rules and ipsets first; what remains
    (kubelet's chains, anything they missed) is swept by `clean_network`."""
    env = {**os.environ, "MURMUR_BUILD_CACHED_ONLY": "1"}
    out = run(["bash", str(HERE / "build/build.sh"), "kubernetes", "kube-router"], quiet=True,
              check=False, env=env).stdout or ""
    bins = {k: Path(v) for k, v in (line.split("=", 1) for line in out.split())}
    if "kubernetes" in bins:
        run([str(bins["kubernetes"] / "kube-proxy"), "--cleanup"], quiet=True, check=False)
    if "kube-router" in bins:
        run([str(bins["kube-router"] / "kube-router"), "--cleanup-config"], quiet=True,
            check=False)


def clean_network() -> None:
    """Remove the chains, ipsets, bridge and network namespaces the cluster made."""
    record = json.loads(HOST_RECORD.read_text()) if HOST_RECORD.exists() else {}
    for ns in Path("/run/netns").glob("cni-*") if Path("/run/netns").exists() else []:
        run(["ip", "netns", "delete", ns.name], quiet=True, check=False)
    # A pod's namespace can outlive its processes (orphaned TCP sockets hold it until they
    # time out), and with it the host end of its veth: delete every port of the bridge.
    ports = run(["ip", "-o", "link", "show", "master", BRIDGE], quiet=True, check=False).stdout
    for line in (ports or "").splitlines():
        run(["ip", "link", "delete", line.split(":")[1].strip().split("@")[0]], quiet=True,
            check=False)
    run(["ip", "link", "delete", BRIDGE], quiet=True, check=False)
    before = set(record.get("chains", []))
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle", "raw"):
            # Only what Kubernetes and the portmap plugin name so: another tool's chains
            # made while the cluster ran are not ours to remove.
            ours = [c.split(":")[2] for c in iptables_chains()
                    if c.startswith(f"{tool}:{table}:") and c not in before
                    and c.split(":")[2].startswith(("KUBE-", "CNI-HOSTPORT", "CNI-DN-"))]
            # Rules jumping to a chain must go before the chain can.
            for chain in sorted(BUILTIN_CHAINS) + ours:
                rules = run([tool, "-t", table, "-S", chain], quiet=True, check=False).stdout
                for rule in rules.splitlines():
                    if rule.startswith("-A ") and any(f"-j {c}" in rule or f"-g {c}" in rule
                                                      for c in ours):
                        run([tool, "-t", table, *shlex.split(rule.replace("-A ", "-D ", 1))],
                            quiet=True, check=False)
            for chain in ours:
                run([tool, "-t", table, "-F", chain], quiet=True, check=False)
            for chain in ours:
                run([tool, "-t", table, "-X", chain], quiet=True, check=False)
    for name in set(ipsets()) - set(record.get("ipsets", [])):
        run(["ipset", "destroy", name], quiet=True, check=False)
    log("network", "chains, ipsets, bridge and namespaces removed")


def unmount_under(roots: list[Path]) -> None:
    """Unmount every mount below `roots`, deepest first."""
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    ours = [m for m in mounts if any(m == str(r) or m.startswith(f"{r}/") for r in roots)]
    for mount in sorted(ours, key=len, reverse=True):
        run(["umount", "-l", mount], quiet=True, check=False)


def restore_host() -> None:
    """Put back the sysctls, the alias and the folders recorded by `up`."""
    if not HOST_RECORD.exists():
        return
    record = json.loads(HOST_RECORD.read_text())
    for name, value in record["sysctls"].items():
        if sysctl_path(name).exists() and sysctl_path(name).read_text().strip() != value:
            sysctl_path(name).write_text(value)
    if not record["lo_alias"]:
        run(["ip", "addr", "del", f"{NODE_IP}/32", "dev", "lo"], quiet=True, check=False)
    for folder, existed in record["dirs"].items():
        if not existed:
            remove(Path(folder))
    # kubelet links each container's log here even when /var/log/containers existed.
    for link in Path("/var/log/containers").glob("*.log") if Path("/var/log/containers").exists() else []:
        if link.is_symlink() and str(STATE) in os.readlink(link):
            link.unlink()
    log("host", "sysctls, node alias and folders restored")


def cmd_check_host(record_file: str | None) -> None:
    """Exit non-zero, naming each difference, if the host differs from a snapshot."""
    path = Path(record_file) if record_file else HOST_RECORD
    record = json.loads(path.read_text())
    now = host_snapshot()
    diffs = [f"{key}: was {record[key]!r}, now {now[key]!r}"
             for key in ("sysctls", "lo_alias", "links", "dirs", "chains", "rules", "ipsets")
             if record.get(key) != now[key]]
    if diffs:
        sys.exit("host differs from the snapshot:\n  " + "\n  ".join(diffs))
    print("host matches the snapshot")


def cmd_snapshot(dest: str) -> None:
    """Write the host's current state to `dest` (for `check-host` after `down`)."""
    Path(dest).write_text(json.dumps(host_snapshot(), indent=2))


def cmd_status() -> None:
    """One line per host process, then the node and the pods."""
    if not supervisor_running():
        print("local cluster: down")
        return
    for info in supervisor().supervisor.getAllProcessInfo():
        print(f"  {info['name']:<26}{info['statename']:<10}pid {info['pid']}")
    try:
        bins = build()
        kubectl(bins, "get", "nodes,pods", "-A", "-o", "wide", check=False)
    except subprocess.CalledProcessError:
        pass


def cmd_logs(name: str | None) -> None:
    """Follow one component's log, or all of them."""
    files = [LOGS / f"{name}.log"] if name else sorted(LOGS.glob("*.log"))
    os.execvp("tail", ["tail", "-n", "40", "-F", *map(str, files)])


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "logs", "load", "kubeconfig",
                                            "check-host", "snapshot"])
    parser.add_argument("args", nargs="*")
    args = parser.parse_args(argv)
    if args.command == "up":
        cmd_up()
    elif args.command == "down":
        cmd_down()
    elif args.command == "status":
        cmd_status()
    elif args.command == "logs":
        cmd_logs(args.args[0] if args.args else None)
    elif args.command == "load":
        if not (RUN / "containerd.sock").exists():
            sys.exit("the local cluster is not running (make cluster)")
        load([Path(a) for a in args.args])
    elif args.command == "kubeconfig":
        print(KUBECONFIG)
    elif args.command == "check-host":
        cmd_check_host(args.args[0] if args.args else None)
    elif args.command == "snapshot":
        cmd_snapshot(args.args[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
