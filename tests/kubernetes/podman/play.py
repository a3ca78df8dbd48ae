#!/usr/bin/env python3
"""Run the rendered `local` overlay on `podman kube play`, check it, remove it.

It checks every probe, that Redis refuses a client without its password, a
page, a POST and a WebSocket through each nginx pod, that a file Django saves
in a web pod comes back from every nginx pod's /media/ (the uploads'
volume, shared by their pods), and that the worker pods
run tasks: the scheduled jobs (TASK_SCHEDULES), which the first worker to
start enqueues, and a task a web pod enqueues, each on one worker pod, as the
workers' log lines say.

    tests/kubernetes/podman/play.py RENDERED.yaml PREFIX APP_IMAGE NGINX_IMAGE [--drain]

--drain (`make chaos`) also stops a web pod as the kubelet would, under a
stream of POSTs through nginx, and fails on any answer but 200. It runs in
`make chaos`, with the other graceful-stop tests, not in `make test`.

Run by tests/kubernetes/podman/run.sh (which renders the overlay and loads the
images); needs podman 4.3 or newer, python3 and PyYAML, nothing else.

podman's `kube play` is a real runtime for Kubernetes YAML, but not a
cluster. What it cannot do, and what this script does instead (the output
says each as it goes):

* Service names: podman has no Services. Each workload is played on its own,
  on one podman network, with a DNS alias per Service that selects its pods
  (`--network NET:alias=web`): `web` resolves to both web pods, as a headless
  Service does. A ClusterIP Service (asgi) is a DNS name with several
  addresses here, not one virtual address.
* Jobs are ignored by `kube play`: the migrate Job's pod template is played as
  a Pod that runs once, and its exit status is the Job's. Init containers
  (web's, asgi's and the worker's wait for the migrations) run the same way, just before
  their pod: podman 4.3 fails on one that runs for more than a moment. The
  CronJob (the backups) is not run (nor are NetworkPolicies,
  PodDisruptionBudgets, HorizontalPodAutoscalers and the Namespace enforced:
  podman has none of them).
* Secrets are mishandled by podman 4.3 (values read as JSON, volumes left
  base64-encoded): they are played as ConfigMaps holding the same files. A
  projected volume (keys of several Secrets in one folder), which podman
  cannot mount, becomes a ConfigMap of its pod's own with those keys.
* Probes are not run by podman without systemd: this script polls every
  container's startup, readiness and liveness probes itself, from the host
  (httpGet to the pod's address) or with `podman exec` (exec probes).
* runAsNonRoot is not enforced by podman: this script checks every container's
  uid itself. runAsUser numbers are the official images' (nginx 101,
  PostgreSQL and Redis 999); where the local stand-in image gives that user
  another number, the stand-in's is used, and the output says so.
* emptyDir and PersistentVolumeClaim volumes would be podman named volumes,
  blind to fsGroup: each is a folder of this run's instead, writable by any
  user (as a tmpfs /tmp is). An emptyDir's folder is its pod's own: for each
  pod to have its own, a Deployment of N replicas is played as N
  Deployments of one (named <name>-0, <name>-1, ...), all behind the same
  DNS name. A claim's folder is the claim's, shared by every pod that names
  it, as one PersistentVolume is (the uploads' volume: web's, nginx's and
  the worker's pods). Ports without
  hostPort would be published on the host: they are dropped (pods are
  reached by their own addresses).

Every name podman sees starts with PREFIX, so two runs never collide, and
everything is removed at the end, whatever happened.
"""

import base64
import copy
import hashlib  # [demo]
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import yaml

T0 = time.monotonic()
# The users the manifests name by number; looked up by name in each image.
IMAGE_USERS = {"nginx": "nginx", "db": "postgres", "redis": "redis"}
# Played in this order: the data services, the migrations, then the servers.
ORDER = ["db", "redis", "migrate", "web", "asgi", "worker", "nginx"]
HOST = "localhost"  # one of the local overlay's DJANGO_ALLOWED_HOSTS
BASE_DIR = Path(__file__).resolve().parents[3]


def log(*words):
    print(f"[{time.monotonic() - T0:6.1f}s]", *words, flush=True)


def run(*command, check=True):
    result = subprocess.run(command, text=True, capture_output=True, check=False)
    if check and result.returncode:
        raise RuntimeError(
            f"{' '.join(command)}: rc {result.returncode}\n{result.stdout}{result.stderr}"
        )
    return result


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class Stack:
    def __init__(self, docs, prefix, *, drain=False):
        self.prefix = prefix
        self.drain = drain
        self.network = f"{prefix}-net"
        self.docs = docs
        self.plays = []  # (workload, file) played, for kube down
        self.volumes = set()
        self.workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"{prefix}-podman"
        self.workdir.mkdir(parents=True, exist_ok=True)
        # ConfigMaps and Secrets (as ConfigMaps) become podman volumes
        # with global names: prefix them.
        self.renames = {
            d["metadata"]["name"]: f"{prefix}-{d['metadata']['name']}"
            for d in docs
            if d["kind"] in ("ConfigMap", "Secret")
        }
        self.configmaps = [
            self.as_configmap(d) for d in docs if d["kind"] in ("ConfigMap", "Secret")
        ]
        self.services = [d for d in docs if d["kind"] == "Service"]

    def as_configmap(self, doc):
        data = dict(doc.get("data") or {})
        if doc["kind"] == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
            data.update(doc.get("stringData") or {})
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self.renames[doc["metadata"]["name"]]},
            "data": data,
        }

    def image_ids(self, image, user):
        out = run(
            "podman",
            "run",
            "--rm",
            "--entrypoint",
            "sh",
            image,
            "-c",
            f"id -u {user}; id -g {user}",
        )
        uid, gid = out.stdout.split()
        return int(uid), int(gid)

    def pod_spec(self, name, spec):
        """The pod spec, changed only where podman 4.3 needs it (see the docstring)."""
        spec = copy.deepcopy(spec)
        for volume in spec.get("volumes", []):
            if "emptyDir" in volume or "persistentVolumeClaim" in volume:
                # A folder of this run's, writable by any user: podman's named
                # volumes ignore fsGroup. The pod's own, or the claim's.
                claim = volume.get("persistentVolumeClaim")
                owner = f"claim-{claim['claimName']}" if claim else f"{name}-{volume['name']}"
                folder = self.workdir / "volumes" / owner
                folder.mkdir(parents=True, exist_ok=True)
                folder.chmod(0o1777)
                volume.pop("emptyDir", None)
                volume.pop("persistentVolumeClaim", None)
                volume["hostPath"] = {"path": str(folder), "type": "Directory"}
            if "secret" in volume:
                secret = volume.pop("secret")
                volume["configMap"] = {"name": secret["secretName"], "optional": False}
                # The keys a pod takes of a Secret (the db and redis pods, a
                # password each of Django's): those alone, as in a cluster.
                if "items" in secret:
                    volume["configMap"]["items"] = secret["items"]
            if "projected" in volume:
                # Keys of several Secrets in one folder (the redis pod's
                # password and its admin's), which podman 4.3 cannot mount:
                # a ConfigMap of this pod's own holding those keys alone.
                own = f"{name}-{volume['name']}"
                data = {}
                for source in volume.pop("projected")["sources"]:
                    secret = source["secret"]
                    (doc,) = (
                        d
                        for d in self.configmaps
                        if d["metadata"]["name"] == self.renames[secret["name"]]
                    )
                    for item in secret["items"]:
                        data[item["path"]] = doc["data"][item["key"]]
                self.renames[own] = f"{self.prefix}-{own}"
                self.configmaps.append(
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": self.renames[own]},
                        "data": data,
                    }
                )
                volume["configMap"] = {"name": own, "optional": False}
            if "configMap" in volume:
                volume["configMap"]["name"] = self.renames[volume["configMap"]["name"]]
                self.volumes.add(volume["configMap"]["name"])
        for container in spec.get("initContainers", []) + spec["containers"]:
            for source in container.get("envFrom", []):
                ref = source.pop("secretRef", None) or source.get("configMapRef")
                source["configMapRef"] = {"name": self.renames[ref["name"]]}
            container.pop("ports", None)
            # Probes are polled by this script; podman would only turn the
            # liveness probe into a health check it cannot schedule.
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                container.pop(probe, None)
            user = IMAGE_USERS.get(container["name"])
            if user:
                uid, gid = self.image_ids(container["image"], user)
                wanted = spec.get("securityContext", {}).get("runAsUser")
                if uid != wanted:
                    log(
                        f"note: {name}/{container['name']}: user {user} is {uid} "
                        f"in this image, not {wanted}; running as {uid}"
                    )
                    spec["securityContext"].update(runAsUser=uid, runAsGroup=gid, fsGroup=gid)
        # aardvark-dns 1.4 stalls a query now and then while containers join
        # or leave the network; glibc's default 5 s timeout would show as a
        # slow request.
        spec["dnsConfig"] = {
            "options": [{"name": "timeout", "value": "1"}, {"name": "attempts", "value": "3"}]
        }
        return spec

    def workload(self, doc):
        kind, name = doc["kind"], doc["metadata"]["name"]
        template = doc["spec"]["template"]
        labels = template["metadata"]["labels"]
        podname = f"{self.prefix}-{name}"
        if kind == "Job":
            spec = self.pod_spec(name, template["spec"])
            spec["restartPolicy"] = "Never"
            outs = [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": podname, "labels": labels},
                    "spec": spec,
                }
            ]
            pods = [podname]
        else:
            # One Deployment of one replica per pod, so that each pod has
            # volumes of its own, as each has its own emptyDir in Kubernetes
            # (a shared /tmp would share run-draining.sh's drain marker).
            outs, pods = [], []
            for replica in range(doc["spec"].get("replicas", 1)):
                out = copy.deepcopy(doc)
                out["metadata"] = {"name": f"{podname}-{replica}", "labels": labels}
                out["spec"]["replicas"] = 1
                out["spec"]["template"]["spec"] = self.pod_spec(
                    f"{name}-{replica}", template["spec"]
                )
                out["spec"].pop("strategy", None)
                outs.append(out)
                pods.append(f"{podname}-{replica}-pod-0")
        aliases = [
            s["metadata"]["name"]
            for s in self.services
            if matches(s["spec"].get("selector"), labels)
        ]
        path = self.workdir / f"{name}.yaml"
        with path.open("w") as f:
            yaml.safe_dump_all([*self.configmaps, *outs], f, sort_keys=False)
        return path, pods, aliases

    def play(self, doc):
        name = doc["metadata"]["name"]
        template = doc["spec"]["template"]
        init = template["spec"].pop("initContainers", [])
        if init:
            # podman 4.3 fails to bring a pod up when an init container runs
            # for more than a moment ("failed to remove once init container
            # ... as it is running"): the init containers run first, as a
            # Pod of their own, and must exit 0, as the kubelet requires.
            job = {
                "kind": "Job",
                "metadata": {"name": f"{name}-init"},
                "spec": {
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/name": f"{name}-init"}},
                        "spec": {**template["spec"], "containers": init},
                    }
                },
            }
            pods = self.play(job)
            for container in init:
                self.wait_exit(
                    pods[0], container["name"], f"{name}'s init container {container['name']}"
                )
        path, pods, aliases = self.workload(doc)
        network = self.network + (":" + ",".join(f"alias={a}" for a in aliases) if aliases else "")
        self.plays.append(path)
        run("podman", "kube", "play", "--network", network, str(path))
        log(
            f"played {doc['kind']} {name}: pods {', '.join(pods)}; "
            f"DNS names: {', '.join(aliases) or '-'}"
        )
        return pods

    def pod_ip(self, pod):
        infra = run(
            "podman", "pod", "inspect", pod, "--format", "{{.InfraContainerID}}"
        ).stdout.strip()
        networks = json.loads(
            run("podman", "inspect", infra, "--format", "{{json .NetworkSettings.Networks}}").stdout
        )
        return networks[self.network]["IPAddress"]

    def probe_passes(self, pod, container, probe, address):
        if "exec" in probe:
            return (
                run(
                    "podman",
                    "exec",
                    f"{pod}-{container['name']}",
                    *probe["exec"]["command"],
                    check=False,
                ).returncode
                == 0
            )
        port = probe["httpGet"]["port"]
        if isinstance(port, str):
            port = {p["name"]: p["containerPort"] for p in container["ports"]}[port]
        url = f"http://{address}:{port}{probe['httpGet']['path']}"
        try:
            with urllib.request.urlopen(url, timeout=probe.get("timeoutSeconds", 1)) as response:
                return 200 <= response.status < 400
        except (OSError, urllib.error.HTTPError):
            return False

    def wait_ready(self, doc, pods, timeout=180):
        """Each container's startup probe, then readiness, then liveness, as
        the kubelet would, within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        for pod in pods:
            address = self.pod_ip(pod)
            for container in doc["spec"]["template"]["spec"]["containers"]:
                for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                    probe = container.get(kind)
                    while probe and not self.probe_passes(pod, container, probe, address):
                        restarts = run(
                            "podman",
                            "inspect",
                            "--format",
                            "{{.RestartCount}}",
                            f"{pod}-{container['name']}",
                        ).stdout
                        if time.monotonic() > deadline or int(restarts or 0) > 3:
                            logs = run(
                                "podman",
                                "logs",
                                "--tail",
                                "30",
                                f"{pod}-{container['name']}",
                                check=False,
                            )
                            raise RuntimeError(
                                f"{pod}/{container['name']}: {kind} still failing\n"
                                f"{logs.stdout}{logs.stderr}"
                            )
                        time.sleep(1)
                uid = run("podman", "exec", f"{pod}-{container['name']}", "id", "-u").stdout.strip()
                if uid == "0":
                    raise RuntimeError(f"{pod}/{container['name']} runs as root")
            log(f"ready: {pod} ({address}); startup, readiness and liveness probes pass; not root")

    def wait_exit(self, pod, container, what):
        status = run("podman", "wait", f"{pod}-{container}").stdout.strip()
        output = run("podman", "logs", f"{pod}-{container}", check=False)
        if status != "0":
            raise RuntimeError(f"{what} exited {status}\n{output.stdout}{output.stderr}")
        log(f"{what}: exit status 0 ({len(output.stdout.splitlines())} lines of output)")

    def teardown(self):
        for path in reversed(self.plays):
            run("podman", "kube", "down", str(path), check=False)
        # kube down stops at the first pod that is missing; catch the rest.
        leftovers = run(
            "podman", "pod", "ps", "-q", "--filter", f"name=^{self.prefix}-", check=False
        ).stdout.split()
        if leftovers:
            run("podman", "pod", "rm", "-f", *leftovers, check=False)
        for volume in sorted(self.volumes):
            run("podman", "volume", "rm", "-f", volume, check=False)
        run("podman", "network", "rm", "-f", self.network, check=False)
        # Files the pods wrote (uploads) belong to their users, which rootless
        # podman maps to subordinate ids: removed inside its user namespace
        # (`podman unshare` refuses when rootful; rmtree does the rest).
        run("podman", "unshare", "rm", "-rf", str(self.workdir), check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)
        log("removed every pod, volume and the network")

    def show_logs(self, lines=15):
        """The last lines of every container of this run, for a failure."""
        containers = run(
            "podman",
            "ps",
            "--all",
            "--format",
            "{{.Names}}",
            "--filter",
            f"name=^{self.prefix}-",
            check=False,
        ).stdout.split()
        for container in sorted(c for c in containers if not c.endswith("-infra")):
            output = run("podman", "logs", "--tail", str(lines), container, check=False)
            log(f"last {lines} lines of {container}:\n{output.stdout}{output.stderr}".rstrip())

    def up_and_check(self):
        self.docs_by_name = {
            d["metadata"]["name"]: d for d in self.docs if d["kind"] in ("Deployment", "Job")
        }
        kinds = sorted(
            {d["kind"] for d in self.docs} - {"Deployment", "Job", "ConfigMap", "Secret", "Service"}
        )
        log(f"not run by podman (no equivalent): {', '.join(kinds)}")
        unknown = set(self.docs_by_name) - set(ORDER)
        if unknown:
            raise RuntimeError(f"no place in the play order for {sorted(unknown)}")
        run("podman", "network", "create", self.network)
        pods_of = {}
        for name in ORDER:
            doc = self.docs_by_name[name]
            pods_of[name] = self.play(doc)
            if doc["kind"] == "Job":
                container = doc["spec"]["template"]["spec"]["containers"][0]["name"]
                self.wait_exit(pods_of[name][0], container, f"the {name} Job")
            else:
                self.wait_ready(doc, pods_of[name])
        check_redis_password(self, pods_of["redis"][0])
        for pod in pods_of["nginx"]:
            check_through_nginx(self, pod)
        check_media(self, pods_of["nginx"], pods_of["web"][0])
        # [demo:begin]
        check_upload(self, pods_of["nginx"])
        # [demo:end]
        check_worker(self, pods_of["worker"], pods_of["web"][0])
        if self.drain:
            check_drain(self, pods_of["nginx"][0], pods_of["web"][-1])


def http(opener, method, url, data=None, headers=None, *, binary=False):
    """(status, body): the body as text, or as bytes with binary=True."""
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Host": HOST, **(headers or {})}
    )
    try:
        with opener.open(request, timeout=10) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    return status, body if binary else body.decode()


def websocket_ping(address, value):
    """{"ping": value} on /ws/ping/, through nginx, Daphne and the channel
    layer; returns the reply. A minimal client (RFC 6455), standard library only."""
    with socket.create_connection((address, 8080), timeout=10) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET /ws/ping/ HTTP/1.1\r\nHost: {HOST}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://{HOST}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise RuntimeError(f"WebSocket handshake: connection closed after {head!r}")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"WebSocket handshake refused: {head.splitlines()[0]!r}")
        rest = head.split(b"\r\n\r\n", 1)[1]
        payload = json.dumps({"ping": value}).encode()
        mask = os.urandom(4)
        sock.sendall(
            bytes([0x81, 0x80 | len(payload)])
            + mask
            + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        )
        while len(rest) < 2 or len(rest) < 2 + (rest[1] & 0x7F):
            rest += sock.recv(4096)
        length = rest[1] & 0x7F  # replies here are short: no extended length
        return json.loads(rest[2 : 2 + length])


def check_redis_password(stack, pod):
    """The in-cluster Redis refuses a client without the password, as
    Compose's does; its probes passed, so they give it. redis-cli exits 0 on
    NOAUTH too: the answer is what counts."""
    answer = run("podman", "exec", f"{pod}-redis", "redis-cli", "ping", check=False)
    if not answer.stdout.startswith("NOAUTH"):
        raise RuntimeError(f"{pod}: redis-cli ping, with no password: {answer.stdout!r}")
    log(f"{pod}: redis-cli ping with no password -> {answer.stdout.strip()}")


def check_through_nginx(stack, pod):
    address = stack.pod_ip(pod)
    base = f"http://{address}:8080"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    # Ready through this nginx pod within 30 s. A web pod's readiness may
    # drop for a moment, as Kubernetes allows: podman's DNS here has failed
    # to resolve `db` for a few seconds under load, and a Gunicorn worker
    # that connected then answered 503 (database failed) until it passed.
    # Each answer that was not ready is logged.
    # An answer that does not come within http()'s 10 s is not ready either:
    # a database check waiting on that DNS (CI's run met it, twice).
    deadline = time.monotonic() + 30
    while True:
        try:
            status, body = http(opener, "GET", f"{base}/readyz")
        except OSError as error:  # a timeout, a reset connection
            status, body = None, f"no answer: {error}"
        if status == 200 and json.loads(body)["status"] == "ok":
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"/readyz through {pod}: {status} {body}")
        log(f"{pod}: GET /readyz -> {status} {body.strip()}; asking again")
        time.sleep(1)
    log(f"{pod}: GET /readyz -> {status} {body.strip()}")
    form = login_form(opener, base)
    log(f"{pod}: GET /admin/login/ -> a CSRF token and a session cookie")
    status, body = http(
        opener,
        "POST",
        f"{base}/admin/login/",
        form,
        {"Origin": f"http://{HOST}", "Referer": f"{base}/admin/login/"},
    )
    if status != 200 or "correct email address and password" not in body:
        raise RuntimeError(f"POST /admin/login/ through {pod}: {status}\n{body[:500]}")
    log(
        f"{pod}: POST /admin/login/ (wrong password) -> {status}, the form again: "
        "CSRF, sessions and PostgreSQL work"
    )
    value = int(time.time())
    reply = websocket_ping(address, value)
    if reply != {"pong": value}:
        raise RuntimeError(f"/ws/ping/ through {pod}: {reply}")
    log(
        f"{pod}: WebSocket /ws/ping/ {{'ping': {value}}} -> {reply}, "
        "through Daphne and the channel layer"
    )
    # nginx's follower (nginx/40-follow-web.sh) asks every web pod for /readyz
    # every 2 s, and lists a new one when two rounds running find it ready.
    web_pods = stack.docs_by_name["web"]["spec"]["replicas"]
    deadline = time.monotonic() + 20
    while True:
        listed = run("podman", "exec", f"{pod}-nginx", "cat", "/tmp/conf.d/web-servers.inc")
        servers = [line for line in listed.stdout.split("\n") if line.strip()]
        if len(servers) == web_pods:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{pod} follows {len(servers)} web pods, not {web_pods}: {servers}")
        time.sleep(1)
    log(f"{pod}: nginx's follower lists both web pods ({' '.join(servers)})")


def media_download(stack, pod, url, expected):
    """GET an upload's URL (/media/...) through an nginx pod: the bytes that
    were saved, or a RuntimeError naming what came instead."""
    status, body = http(
        urllib.request.build_opener(), "GET", f"http://{stack.pod_ip(pod)}:8080{url}", binary=True
    )
    if (status, body) != (200, expected):
        raise RuntimeError(
            f"GET {url} through {pod}: {status}, {len(body)} bytes "
            f"({'the same' if body == expected else 'not the'} {len(expected)} saved)"
        )
    log(f"{pod}: GET {url} -> 200, the {len(expected)} bytes saved")


def web_shell(web_pod, code: str) -> str:
    """The last word `code` printed, run by `manage.py shell` in a web pod."""
    return run(
        "podman", "exec", f"{web_pod}-web", "python", "manage.py", "shell", "-c", code
    ).stdout.split()[-1]


def check_media(stack, nginx_pods, web_pod):
    """A file saved by Django in a web pod (default storage: MEDIA_ROOT, on
    the uploads' volume) comes back, byte for byte, from every nginx pod's
    /media/: web writes the volume, and nginx's pods read the same one."""
    saved = os.urandom(4096)
    output = web_shell(
        web_pod,
        "import sys, uuid; from django.core.files.base import ContentFile; "
        "from django.core.files.storage import default_storage as storage; "
        "name = storage.save(f'podman-check/{uuid.uuid4().hex}/saved.bin', "
        f"ContentFile(bytes.fromhex('{saved.hex()}'))); print(storage.url(name))",
    )
    log(f"{web_pod}: saved {len(saved)} bytes in default storage, at {output}")
    for pod in nginx_pods:
        media_download(stack, pod, output, saved)


# [demo:begin]
def check_upload(stack, nginx_pods):
    """The demo's upload form, through the first nginx pod: the file comes
    back byte for byte from the last nginx pod's /media/, and the worker
    (which reads it from the same volume) computes its SHA-256."""
    base = f"http://{stack.pod_ip(nginx_pods[0])}:8080"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    _, page = http(opener, "GET", f"{base}/")
    token = page.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    sent = os.urandom(8192)
    boundary = f"----podman-check-{os.urandom(8).hex()}"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n'
            f"{token}\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="sent.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + sent
        + f"\r\n--{boundary}--\r\n".encode()
    )
    # The form redirects to the page, which lists the upload by its URL.
    status, page = http(
        opener,
        "POST",
        f"{base}/",
        body,
        {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Origin": f"http://{HOST}",
            "Referer": f"{base}/",
        },
    )
    found = re.search(r'<a href="(/media/[^"]+/sent\.bin)">', page)
    if status != 200 or not found:
        raise RuntimeError(f"POST / (upload) through {nginx_pods[0]}: {status}\n{page[:500]}")
    log(f"{nginx_pods[0]}: POST / with a file of {len(sent)} bytes -> saved at {found[1]}")
    media_download(stack, nginx_pods[-1], found[1], sent)
    sha256 = hashlib.sha256(sent).hexdigest()
    deadline = time.monotonic() + 30
    while f"<code>{sha256}</code>" not in page:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no SHA-256 {sha256} on the page within 30 s:\n{page[:1000]}")
        time.sleep(1)
        _, page = http(opener, "GET", f"{base}/")
    log(f"{nginx_pods[0]}: the worker read the upload: its SHA-256, {sha256}, is on the page")


# [demo:end]
def scheduled_tasks():
    """The tasks of TASK_SCHEDULES (project/settings/base.py), by path: the
    first worker to start enqueues each (once a period, however many run)."""
    settings = (BASE_DIR / "project/settings/base.py").read_text()
    block = re.search(r"^TASK_SCHEDULES = \{\n(.*?)^\}", settings, re.MULTILINE | re.DOTALL)
    paths = re.findall(r'"task": "([\w.]+)"', block[1])
    if not paths:
        raise RuntimeError("no task in TASK_SCHEDULES (project/settings/base.py)")
    return paths


def tasks_succeeded(pods):
    """{task id: (path, pod)} of every "Task id=... path=... state=SUCCESSFUL"
    line (Django's logger django.tasks) in these worker pods' logs; a task
    that succeeded on two pods fails the check (each runs on one worker)."""
    succeeded = {}
    for pod in pods:
        output = run("podman", "logs", f"{pod}-worker", check=False)
        for line in (output.stdout + output.stderr).splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or record.get("logger") != "django.tasks":
                continue
            found = re.fullmatch(r"Task id=(\S+) path=(\S+) state=SUCCESSFUL", record["message"])
            if not found:
                continue
            if found[1] in succeeded and succeeded[found[1]][1] != pod:
                raise RuntimeError(
                    f"task {found[1]} succeeded on two workers: {pod} and {succeeded[found[1]][1]}"
                )
            succeeded[found[1]] = (found[2], pod)
    return succeeded


def wait_for_tasks(pods, wanted, timeout):
    """Poll the worker pods' logs until `wanted` (a function of what
    succeeded) is true, within `timeout` seconds: what succeeded."""
    deadline = time.monotonic() + timeout
    while True:
        succeeded = tasks_succeeded(pods)
        if wanted(succeeded):
            return succeeded
        if time.monotonic() > deadline:
            tails = {
                pod: run("podman", "logs", "--tail", "15", f"{pod}-worker", check=False)
                for pod in pods
            }
            raise RuntimeError(
                f"worker pods: no such task within {timeout} s; succeeded: {succeeded}\n"
                + "\n".join(f"{pod}:\n{out.stdout}{out.stderr}" for pod, out in tails.items())
            )
        time.sleep(1)


def check_worker(stack, pods, web_pod):
    """The worker pods run tasks: the scheduled jobs, enqueued when the first
    worker starts, and a task (apps/core/tasks/probes.py) enqueued in a web
    pod, which reaches a worker through PostgreSQL alone; each runs on one
    worker pod; and the worker's health probes pass afterwards."""
    paths = scheduled_tasks()
    succeeded = wait_for_tasks(
        pods, lambda done: set(paths) <= {path for path, _ in done.values()}, timeout=60
    )
    for task_id, (path, pod) in succeeded.items():
        if path in paths:
            log(f"{pod}: scheduled job {path.rpartition('.')[2]} ran (task {task_id}): SUCCESSFUL")
    enqueued = web_shell(
        web_pod, "from apps.core.tasks.probes import probe; print(probe.enqueue().id)"
    )
    started = time.monotonic()
    succeeded = wait_for_tasks(pods, lambda done: enqueued in done, timeout=30)
    path, pod = succeeded[enqueued]
    log(
        f"{pod}: task {enqueued} ({path}), enqueued in {web_pod}, ran within "
        f"{time.monotonic() - started:.1f} s: SUCCESSFUL"
    )
    (container,) = stack.docs_by_name["worker"]["spec"]["template"]["spec"]["containers"]
    command = " ".join(container["livenessProbe"]["exec"]["command"])
    for pod in pods:
        for kind in ("livenessProbe", "readinessProbe"):
            if not stack.probe_passes(pod, container, container[kind], None):
                raise RuntimeError(f"{pod}: the worker's {kind} fails after running tasks")
        log(f"{pod}: the worker's liveness and readiness probes pass ({command})")


def login_form(opener, base, *, username="nobody", password="wrong"):
    """A CSRF token for the admin's login form, and its cookie in `opener`."""
    _, body = http(opener, "GET", f"{base}/admin/login/")
    token = body.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    form = {"csrfmiddlewaretoken": token, "username": username, "password": password}
    return urllib.parse.urlencode(form).encode()


def check_drain(stack, nginx_pod, web_pod):
    """POSTs through nginx while a web pod stops as the kubelet stops it
    (SIGTERM; run-draining.sh drains, then Gunicorn stops): not one may fail."""
    base = f"http://{stack.pod_ip(nginx_pod)}:8080"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    # Empty fields: the form is refused before any password is checked, so
    # the POSTs are no failed logins, which django-axes would lock out (429)
    # after ten; CSRF, the session and PostgreSQL are all still used.
    form = login_form(opener, base, username="", password="")
    headers = {"Origin": f"http://{HOST}"}
    statuses, done = [], threading.Event()

    def post_until_done():
        # Three a second: under nginx's limit on writes (5 a second a client).
        while not done.is_set():
            try:
                status = http(opener, "POST", f"{base}/admin/login/", form, headers)[0]
            except OSError as error:  # no answer at all (refused, reset, timed out)
                status = type(error).__name__
            statuses.append((time.monotonic(), status))
            time.sleep(0.3)

    poster = threading.Thread(target=post_until_done)
    poster.start()
    try:
        time.sleep(2)
        started = time.monotonic()
        grace = stack.docs_by_name["web"]["spec"]["template"]["spec"][
            "terminationGracePeriodSeconds"
        ]
        run("podman", "stop", "--time", str(grace), f"{web_pod}-web")
        ended = time.monotonic()
        time.sleep(4)  # and on, with one web pod fewer
    finally:
        done.set()
        poster.join()
    failed = [status for _, status in statuses if status != 200]
    # Some answered while the pod drained and stopped, and some after.
    during = [status for at, status in statuses if started < at <= ended]
    after = [status for at, status in statuses if at > ended]
    if failed or not during or not after:
        logs = run("podman", "logs", "--timestamps", f"{nginx_pod}-nginx", check=False)
        follower = [
            line for line in logs.stderr.splitlines() if "follow-web" in line or "[error]" in line
        ]
        timeline = " ".join(f"{at - started:+.1f}s:{status}" for at, status in statuses)
        raise RuntimeError(
            f"POSTs while {web_pod} drained (seconds from SIGTERM; stopped at "
            f"{ended - started:+.1f}s): {timeline}\nnginx: " + "\n".join(follower[-10:])
        )
    log(
        f"{web_pod} stopped (SIGTERM, drained, {ended - started:.1f} s) under POSTs through "
        f"{nginx_pod}: {len(statuses)} POSTs ({len(during)} while it drained), "
        "every one answered 200, none a 502"
    )


def main(rendered, prefix, app_image, nginx_image, *options):
    docs = [d for d in yaml.safe_load_all(Path(rendered).read_text()) if d]
    # The images `make test` built from deploy/Dockerfile (targets runtime
    # and nginx), in place of the overlay's names for them: <project>/app and
    # <project>/nginx, the project being what the base's objects are part of.
    (project,) = {
        d["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") for d in docs
    } - {None}
    built = {f"{project}/app": app_image, f"{project}/nginx": nginx_image}
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            spec = doc["spec"]["template"]["spec"]
            for container in spec.get("initContainers", []) + spec["containers"]:
                name = container["image"].rsplit(":", 1)[0]
                container["image"] = built.get(name, container["image"])
    stack = Stack(docs, prefix, drain="--drain" in options)
    failure = None
    try:
        stack.up_and_check()
    except Exception as error:
        # Where, in this script: a bare "timed out" says little on its own.
        where = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == __file__]
        calls = " < ".join(f"{frame.name} (line {frame.lineno})" for frame in reversed(where))
        failure = f"FAILED: {error}; in {calls}"
        log(failure)
        stack.show_logs()
    finally:
        stack.teardown()
    if failure:
        # Again, last: a CI log cut to its tail still says what failed.
        log(failure)
        return 1
    log(
        "the local overlay ran on podman: every probe passes, the page, a POST, "
        "a WebSocket and the uploads' volume work through nginx, and the worker "
        "pods run tasks" + (", and a web pod drains under POSTs" if stack.drain else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
