"""What the rendered manifests must hold, whatever a fork changes in them:
selectors, probes, resources, security, images, drain timings, variables."""

import ipaddress
import re
from urllib.parse import urlsplit

import pytest

from apps.core.middleware import PROBES
from project.settings.base import mail_transport
from tests.project_files import compose_file
from tests.test_ports import port_of

from .conftest import BASE_DIR, OVERLAYS, PROJECT_NAME, render_production

# The images deploy/Dockerfile builds, by the name the manifests give them,
# and the target that builds each.
OUR_IMAGES = {f"{PROJECT_NAME}/app": "runtime", f"{PROJECT_NAME}/nginx": "nginx"}
WORKLOAD_KINDS = ("Deployment", "Job", "CronJob")


def pod_template(doc: dict) -> dict:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]
    return doc["spec"]["template"]


def workloads(docs):
    return [doc for doc in docs if doc["kind"] in WORKLOAD_KINDS]


def containers(doc, *, init=True):
    spec = pod_template(doc)["spec"]
    return (spec.get("initContainers", []) if init else []) + spec["containers"]


def image_name(image: str) -> str:
    """The image's name without its registry, tag or digest, as the base
    names it: <project>/app, which the production overlay names as the
    Images workflow pushes it, <registry>/<repository>-app."""
    name = image.split("@", 1)[0]
    name = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    for ours in OUR_IMAGES:
        if name.endswith((ours, "-" + ours.rsplit("/", 1)[1])):
            return ours
    return name


def is_ours(container) -> bool:
    return image_name(container["image"]) in OUR_IMAGES


def matching(docs, selector: dict) -> list[str]:
    return [
        f"{doc['kind']}/{doc['metadata']['name']}"
        for doc in workloads(docs)
        if selector.items() <= pod_template(doc)["metadata"].get("labels", {}).items()
    ]


def by_name(docs, kind, name):
    return next(doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name)


@pytest.fixture(params=OVERLAYS)
def docs(request, rendered):
    return rendered[request.param]


# --- Selectors -------------------------------------------------------------------


def test_every_service_pdb_and_hpa_selects_exactly_one_workload(docs):
    for doc in docs:
        if doc["kind"] == "Service":
            selector = doc["spec"]["selector"]
        elif doc["kind"] == "PodDisruptionBudget":
            selector = doc["spec"]["selector"]["matchLabels"]
        elif doc["kind"] == "HorizontalPodAutoscaler":
            target = doc["spec"]["scaleTargetRef"]
            selector = by_name(docs, target["kind"], target["name"])["spec"]["selector"][
                "matchLabels"
            ]
        else:
            continue
        assert len(matching(docs, selector)) == 1, (doc["kind"], doc["metadata"]["name"], selector)


def test_every_deployment_selects_its_own_pods_only(docs):
    for doc in docs:
        if doc["kind"] == "Deployment":
            assert matching(docs, doc["spec"]["selector"]["matchLabels"]) == [
                f"Deployment/{doc['metadata']['name']}"
            ]


def test_every_network_policy_selects_a_workload(docs):
    for doc in docs:
        if doc["kind"] == "NetworkPolicy" and doc["spec"]["podSelector"]:
            assert matching(docs, doc["spec"]["podSelector"]["matchLabels"]), doc["metadata"][
                "name"
            ]


# --- Monitoring (components/monitoring) -----------------------------------------

# The scrape jobs the alerting rules read (tests/monitoring/).
METRICS_JOBS = {"web", "asgi", "worker"}


def allows_prometheus(docs, workload: str, port: int) -> bool:
    """A NetworkPolicy selecting this workload alone lets pods of another
    namespace (Prometheus's) reach this port."""
    return any(
        matching(docs, doc["spec"]["podSelector"]["matchLabels"]) == [workload]
        and any(
            any("namespaceSelector" in peer for peer in rule.get("from", []))
            and port in {entry["port"] for entry in rule.get("ports", [])}
            for rule in doc["spec"].get("ingress", [])
        )
        for doc in docs
        if doc["kind"] == "NetworkPolicy" and doc["spec"]["podSelector"]
    )


def test_every_pod_monitor_scrapes_one_workload_on_a_port_it_declares(docs):
    """The port by name on the workload's container, its job one the rules
    read, and a NetworkPolicy that lets Prometheus through to it."""
    jobs = set()
    for doc in docs:
        if doc["kind"] != "PodMonitor":
            continue
        (workload,) = matching(docs, doc["spec"]["selector"]["matchLabels"])
        kind, name = workload.split("/")
        template = pod_template(by_name(docs, kind, name))
        jobs.add(template["metadata"]["labels"][doc["spec"]["jobLabel"]])
        ports = {
            port["name"]: port["containerPort"]
            for container in template["spec"]["containers"]
            for port in container.get("ports", [])
        }
        for endpoint in doc["spec"]["podMetricsEndpoints"]:
            assert endpoint["port"] in ports, (doc["metadata"]["name"], endpoint["port"])
            assert allows_prometheus(docs, workload, ports[endpoint["port"]]), workload
    assert jobs in (set(), METRICS_JOBS)


def test_no_service_exposes_the_metrics_port(docs):
    """Prometheus scrapes each pod itself; a Service would put the metrics
    next to what the pods serve, where nginx or an Ingress could pass them on."""
    for doc in docs:
        if doc["kind"] == "Service":
            for port in doc["spec"]["ports"]:
                assert port.get("targetPort") != "metrics", doc
                assert port["port"] != port_of("metrics"), doc


# --- Ports: each the one its server listens on (tests/test_ports.py) ------------------


def declared_ports(docs, workload: str) -> dict[str, int]:
    """A workload's container ports ("Deployment/web"), by name."""
    kind, name = workload.split("/")
    spec = pod_template(by_name(docs, kind, name))["spec"]
    return {
        port["name"]: port["containerPort"]
        for container in spec["containers"]
        for port in container.get("ports", [])
    }


def test_every_port_is_the_one_its_server_listens_on(docs):
    """The containers' ports, the Services', and the metrics port the
    ConfigMap gives: the numbers Gunicorn, Daphne and nginx listen on and
    Compose's metrics port, as tests/test_ports.py reads them."""
    (settings,) = (
        doc
        for doc in docs
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("django-settings-")
    )
    metrics = int(settings["data"]["METRICS_PORT"])
    assert metrics == port_of("metrics")
    assert declared_ports(docs, "Deployment/web") == {"http": port_of("web"), "metrics": metrics}
    assert declared_ports(docs, "Deployment/asgi") == {"http": port_of("asgi"), "metrics": metrics}
    assert declared_ports(docs, "Deployment/worker") == {"metrics": metrics}
    assert declared_ports(docs, "Deployment/nginx") == {
        "http": port_of("nginx"),
        "health": port_of("nginx-health"),
    }
    # nginx reaches asgi through its Service, at Daphne's port
    # (nginx/snippets/site.conf), and web's pods at Gunicorn's (web's Service
    # is headless: nginx/40-follow-web.sh); the Services say the same.
    for name in ("web", "asgi"):
        (port,) = by_name(docs, "Service", name)["spec"]["ports"]
        assert (port["port"], port["targetPort"]) == (port_of(name), "http"), name


def test_network_policies_open_the_ports_the_pods_listen_on(docs):
    """Each rule's port is one its pods declare: an ingress rule's, the pods
    the policy selects; an egress rule's to pods of this namespace, theirs. A
    port changed in a Deployment and not in its policies would be closed."""
    for doc in docs:
        if doc["kind"] != "NetworkPolicy" or not doc["spec"]["podSelector"]:
            continue
        selected = matching(docs, doc["spec"]["podSelector"]["matchLabels"])
        leads_to = [(rule, selected) for rule in doc["spec"].get("ingress", [])]
        for rule in doc["spec"].get("egress", []):
            for peer in rule.get("to", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    leads_to.append((rule, matching(docs, peer["podSelector"]["matchLabels"])))
        for rule, workloads_reached in leads_to:
            for entry in rule.get("ports", []):
                for workload in workloads_reached:
                    declared = declared_ports(docs, workload).values()
                    assert entry["port"] in declared, (doc["metadata"]["name"], workload, entry)


# --- Probes ----------------------------------------------------------------------

COMPOSE_SERVICES = compose_file(BASE_DIR / "docker-compose.yml")["services"]
NGINX_TEMPLATE = (BASE_DIR / "nginx/default.conf.template").read_text()
NGINX_HEALTHCHECK_SCRIPT = (BASE_DIR / "nginx/healthcheck.sh").read_text()
NGINX_HEALTHCHECK = COMPOSE_SERVICES["nginx"]["healthcheck"]["test"]
WORKER = COMPOSE_SERVICES["worker"]


def test_probes_are_on_paths_the_app_serves(docs):
    """Every long-running container has all three probes; Django's ask
    /healthz (startup, liveness) and /readyz (readiness); nginx's readiness
    asks its own health port's /healthz, and its startup and liveness run
    Compose's health check (which asks the same, and that the follower of
    web's pods is running). The worker serves no HTTP: its three probes run
    Compose's worker health check (deploy/healthcheck.sh worker)."""
    nginx_health_port = int(
        re.search(r"listen (\d+);\s*access_log off;\s*location = /healthz", NGINX_TEMPLATE)[1]
    )
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        for container in containers(doc, init=False):
            probes = {
                kind: container.get(kind)
                for kind in ("startupProbe", "livenessProbe", "readinessProbe")
            }
            assert all(probes.values()), (doc["metadata"]["name"], container["name"])
            if not is_ours(container):
                continue
            if container.get("command") == WORKER["command"]:
                assert WORKER["healthcheck"]["test"][0] == "CMD"
                for probe in probes.values():
                    assert probe["exec"]["command"] == WORKER["healthcheck"]["test"][1:]
                continue
            ports = {port["name"]: port["containerPort"] for port in container["ports"]}
            if image_name(container["image"]) == f"{PROJECT_NAME}/nginx":
                assert NGINX_HEALTHCHECK[0] == "CMD"
                for kind in ("startupProbe", "livenessProbe"):
                    assert probes[kind]["exec"]["command"] == NGINX_HEALTHCHECK[1:]
                ready = probes["readinessProbe"]["httpGet"]
                assert (ready["path"], ports[ready["port"]]) == ("/healthz", nginx_health_port)
                assert f":{nginx_health_port}/healthz" in NGINX_HEALTHCHECK_SCRIPT
                continue
            paths = {
                kind: (probe["httpGet"]["path"], ports[probe["httpGet"]["port"]])
                for kind, probe in probes.items()
            }
            assert {path for path, _ in paths.values()} <= set(PROBES)
            assert paths["livenessProbe"][0] == paths["startupProbe"][0] == "/healthz"
            assert paths["readinessProbe"][0] == "/readyz"


# --- Resources and security -----------------------------------------------------


def test_every_container_has_requests_and_limits(docs):
    for doc in workloads(docs):
        for container in containers(doc):
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= resources.get(kind, {}).keys(), (
                    doc["metadata"]["name"],
                    container["name"],
                )


def test_every_pod_is_restricted(docs):
    """The Pod Security Standards' `restricted` profile, and more: read-only
    root file systems, no service account token."""
    for doc in workloads(docs):
        spec = pod_template(doc)["spec"]
        name = doc["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False, name
        assert not any(spec.get(key) for key in ("hostNetwork", "hostPID", "hostIPC")), name
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        # Volumes of the kinds the restricted profile allows that these use
        # (never a hostPath).
        allowed = {"emptyDir", "secret", "projected", "configMap", "persistentVolumeClaim"}
        for volume in spec.get("volumes", []):
            assert volume.keys() & allowed, (name, volume)
        for container in containers(doc):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert context["capabilities"] == {"drop": ["ALL"]}, (name, container["name"])
            assert not context.get("privileged"), (name, container["name"])
            assert context.get("runAsUser", pod["runAsUser"]) > 0, (name, container["name"])
            if is_ours(container):
                # What each process writes: /tmp, on an emptyDir (the drain
                # marker, nginx's rendered configuration and cache).
                tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
                assert "emptyDir" in next(v for v in spec["volumes"] if v["name"] == tmp["name"])


def test_the_namespace_enforces_the_restricted_standard(docs):
    (namespace,) = (doc for doc in docs if doc["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {doc["metadata"].get("namespace") for doc in docs if doc["kind"] != "Namespace"} == {
        namespace["metadata"]["name"]
    }


def test_network_policies_deny_by_default(docs):
    deny = by_name(docs, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


# --- Images ----------------------------------------------------------------------


def test_images_are_those_the_dockerfile_builds(docs):
    dockerfile = (BASE_DIR / "deploy/Dockerfile").read_text()
    compose = compose_file(BASE_DIR / "docker-compose.yml")
    compose_images = {
        service["image"] for service in compose["services"].values() if "image" in service
    }
    for doc in workloads(docs):
        for container in containers(doc):
            name = image_name(container["image"])
            if name in OUR_IMAGES:
                assert re.search(rf"^FROM \S+ AS {OUR_IMAGES[name]}$", dockerfile, re.MULTILINE)
                command = container.get("command", [])
                scripts = [part for part in command if part.startswith("deploy/")]
                assert all((BASE_DIR / script).is_file() for script in scripts), command
            else:
                # PostgreSQL and Redis (local overlay): the images Compose runs.
                assert container["image"] in compose_images, container["image"]


def test_production_runs_our_images_by_digest(rendered):
    """The production overlay names each of our images by digest (the bytes
    the Images workflow built, images/kustomization.yaml), never by a tag,
    which a later push can move beneath a running Deployment."""
    seen = set()
    for doc in workloads(rendered["production"]):
        for container in containers(doc):
            assert is_ours(container), container["image"]
            image = container["image"]
            name = doc["metadata"]["name"]
            assert re.fullmatch(r"[^@\s]+@sha256:[0-9a-f]{64}", image), (name, image)
            seen.add(image_name(image))
    assert seen == set(OUR_IMAGES)


# --- Drain timings ---------------------------------------------------------------


def script_default(path: str, pattern: str) -> int:
    return int(re.search(pattern, (BASE_DIR / path).read_text(), re.MULTILINE)[1])


def prestop_sleep(container) -> int:
    command = " ".join(
        container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    )
    match = re.search(r"\bsleep (\d+)", command)
    return int(match[1]) if match else 0


def readiness_delay(container) -> int:
    """At most this long after a pod starts to drain, its readiness probe has failed."""
    probe = container["readinessProbe"]
    return probe["periodSeconds"] * probe["failureThreshold"]


def test_the_drain_timings_add_up(rendered):
    """On SIGTERM, run-draining.sh fails readiness for DRAIN_SECONDS, then the
    server stops gracefully; the grace period covers preStop + drain + the
    server's stop, and readiness (and nginx's follower) notice the drain
    before it ends."""
    drain_web = script_default("deploy/run-draining.sh", r"DRAIN_SECONDS:-(\d+)")
    drain_asgi = script_default("deploy/start-asgi.sh", r"^export DRAIN_SECONDS=(\d+)")
    graceful = script_default("deploy/gunicorn.conf.py", r"^graceful_timeout = (\d+)")
    gunicorn_timeout = script_default("deploy/gunicorn.conf.py", r"^timeout = (\d+)")
    follower_interval = script_default("nginx/40-follow-web.sh", r"^INTERVAL=(\d+)")
    follower_timeout = script_default("nginx/40-follow-web.sh", r"timeout (\d+) wget")
    for docs in rendered.values():
        web = by_name(docs, "Deployment", "web")["spec"]["template"]["spec"]
        (container,) = web["containers"]
        assert (
            prestop_sleep(container) + drain_web + graceful < web["terminationGracePeriodSeconds"]
        )
        assert readiness_delay(container) <= drain_web
        # A draining replica leaves nginx in the first round that asks it
        # after it starts to answer 503 (40-follow-web.sh): a pause and a
        # round (a round lasts its timeout at most, when a replica is slow)
        # later, before its Gunicorn stops.
        assert follower_interval + follower_timeout < drain_web

        asgi = by_name(docs, "Deployment", "asgi")["spec"]["template"]["spec"]
        (container,) = asgi["containers"]
        assert prestop_sleep(container) + drain_asgi < asgi["terminationGracePeriodSeconds"]
        assert readiness_delay(container) <= drain_asgi

        nginx = by_name(docs, "Deployment", "nginx")["spec"]["template"]["spec"]
        (container,) = nginx["containers"]
        # After its preStop pause nginx quits gracefully, waiting for the
        # slowest proxied request: Gunicorn's timeout.
        assert prestop_sleep(container) + gunicorn_timeout < nginx["terminationGracePeriodSeconds"]

        # After any preStop pause, each is given what Compose gives it
        # (tests/test_shutdown_timing.py holds Compose's to the same chain).
        for name, spec in (("web", web), ("asgi", asgi), ("nginx", nginx)):
            (container,) = spec["containers"]
            grace = int(re.fullmatch(r"(\d+)s", COMPOSE_SERVICES[name]["stop_grace_period"])[1])
            assert spec["terminationGracePeriodSeconds"] == prestop_sleep(container) + grace, name


# --- The worker ------------------------------------------------------------------


def test_the_worker_finishes_its_task_before_the_kubelet_kills_it(rendered):
    """On SIGTERM the worker finishes the task in hand, which may run up to
    TASK_TIME_LIMIT_SECONDS (project/settings/base.py): the grace period is
    longer, and the same as Compose's stop_grace_period for the same command."""
    limit = script_default("project/settings/base.py", r"^TASK_TIME_LIMIT_SECONDS = (\d+)")
    compose_grace = int(re.fullmatch(r"(\d+)s", WORKER["stop_grace_period"])[1])
    assert limit < compose_grace
    for docs in rendered.values():
        worker = by_name(docs, "Deployment", "worker")
        (container,) = containers(worker, init=False)
        assert container["command"] == WORKER["command"]
        grace = pod_template(worker)["spec"]["terminationGracePeriodSeconds"]
        assert limit < grace == compose_grace


def network_policies_of(docs, labels: dict) -> list[dict]:
    """The specs of the NetworkPolicies that select pods with these labels."""
    return [
        doc["spec"]
        for doc in docs
        if doc["kind"] == "NetworkPolicy"
        and doc["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
    ]


# The mail server's submission ports: STARTTLS (smtp+tls://) and TLS
# (smtp+ssl://), EMAIL_URL's defaults (project/settings/base.py).
MAIL_PORTS = {587, 465}


def egress_ports(docs, workload: str) -> set[int] | None:
    """The ports the NetworkPolicies selecting a workload's pods let them
    reach ("Deployment/web"), or None for every port (a rule naming none)."""
    kind, name = workload.split("/")
    labels = pod_template(by_name(docs, kind, name))["metadata"].get("labels", {})
    rules = [
        rule for policy in network_policies_of(docs, labels) for rule in policy.get("egress", [])
    ]
    if not all(rule.get("ports") for rule in rules):
        return None
    return {entry["port"] for rule in rules for entry in rule["ports"]}


def test_the_worker_reaches_its_data_and_takes_only_the_metrics_scrape(docs):
    """Out: PostgreSQL, Redis and DNS, the mail server's submission port
    where it has a mail server to send to (EMAIL_URL: the production
    overlay's), and HTTPS where the overlay has a policy for it (Sentry, S3),
    nothing else. In: nothing but another namespace's pods
    (Prometheus's, components/monitoring) on the metrics port."""
    worker = by_name(docs, "Deployment", "worker")
    policies = network_policies_of(docs, pod_template(worker)["metadata"]["labels"])
    (container,) = containers(worker, init=False)
    metrics = {port["containerPort"] for port in container["ports"] if port["name"] == "metrics"}
    variables = container_environment(docs, container)
    sends_mail = (
        {mail_transport(variables["EMAIL_URL"])["OPTIONS"]["port"]}
        if variables.get("EMAIL_URL")
        else set()
    )
    assert egress_ports(docs, "Deployment/worker") == {53} | set(
        data_ports(variables).values()
    ) | sends_mail | https_port(variables)
    for policy in policies:
        for rule in policy.get("ingress", []):
            assert rule.get("from") and rule.get("ports"), rule
            assert all("namespaceSelector" in peer for peer in rule["from"]), rule
            assert {entry["port"] for entry in rule["ports"]} <= metrics, rule


def test_only_the_worker_reaches_the_mail_server(docs):
    """The worker sends the mail; web and asgi store it as tasks in
    PostgreSQL. No other pod may reach a mail server's port, whatever
    policy selects it (one for every pod, or one with a rule for every port)."""
    for doc in workloads(docs):
        workload = f"{doc['kind']}/{doc['metadata']['name']}"
        if workload == "Deployment/worker":
            continue
        ports = egress_ports(docs, workload)
        assert ports is not None, f"{workload}: a NetworkPolicy lets it reach every port"
        assert not ports & MAIL_PORTS, (workload, ports)


# The default port of each data service's URL scheme.
DEFAULT_PORTS = {"postgres": 5432, "redis": 6379, "rediss": 6379}
# The widest ipBlock an egress rule may name: a /8 (an operator's whole
# private network, or a provider's published range), never 0.0.0.0/0 or
# ::/0, which would be any address again.
WIDEST_EGRESS_BLOCK = 2**24
# Settings naming a service outside the cluster that Django reaches over
# HTTPS: the HTTPS egress policy (the production overlay's) is for them.
HTTPS_SETTINGS = ("SENTRY_DSN", "MEDIA_S3_BUCKET")


def data_ports(variables: dict) -> dict[str, int]:
    """The port of DATABASE_URL and REDIS_URL, by variable."""
    ports = {}
    for name in ("DATABASE_URL", "REDIS_URL"):
        url = urlsplit(variables[name])
        ports[name] = url.port or DEFAULT_PORTS[url.scheme]
    return ports


def https_port(variables: dict) -> set[int]:
    """{443} where the settings name an HTTPS service, else nothing."""
    return {443} if any(variables.get(name) for name in HTTPS_SETTINGS) else set()


def egress_peers(docs, workload: str, port: int) -> list[dict]:
    """Every `to` peer of the rules that let a workload's pods reach a port."""
    kind, name = workload.split("/")
    labels = pod_template(by_name(docs, kind, name))["metadata"].get("labels", {})
    return [
        peer
        for policy in network_policies_of(docs, labels)
        for rule in policy.get("egress", [])
        if port in {entry["port"] for entry in rule.get("ports", [])}
        for peer in rule.get("to", [])
    ]


def test_no_egress_rule_is_open_to_any_address(docs):
    """Every egress rule names its destinations: pods (by label, in this
    namespace or a named one) or an address block no wider than a /8. A rule
    with no `to`, or 0.0.0.0/0, lets a pod reach any address on its ports:
    a compromised pod would reach any database, or send mail anywhere."""
    rules = 0
    for doc in docs:
        if doc["kind"] != "NetworkPolicy":
            continue
        for rule in doc["spec"].get("egress", []):
            rules += 1
            what = (doc["metadata"]["name"], rule)
            assert rule.get("to"), f"open to any address: {what}"
            for peer in rule["to"]:
                if "ipBlock" in peer:
                    block = ipaddress.ip_network(peer["ipBlock"]["cidr"])
                    assert block.num_addresses <= WIDEST_EGRESS_BLOCK, what
                    assert "except" not in peer["ipBlock"], what
                else:
                    assert peer.keys() <= {"podSelector", "namespaceSelector"}, what
                    assert any(peer.values()), f"every pod of every namespace: {what}"
    assert rules


def test_django_reaches_its_data_services_by_destination(docs):
    """Each of Django's workloads reaches DATABASE_URL's and REDIS_URL's
    port, and there only its server: in the cluster (the local overlay), the
    pods of the Service its host names, by label; outside (production),
    address blocks the operator fills in. HTTPS only where a setting names
    a service that needs it (or the overlay has a policy waiting for one)."""
    services = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Service"}
    for name in DJANGO_WORKLOADS:
        workload = f"{'Job' if name == 'migrate' else 'Deployment'}/{name}"
        doc = by_name(docs, *workload.split("/"))
        (container,) = containers(doc, init=False)
        variables = container_environment(docs, container)
        for url, port in data_ports(variables).items():
            peers = egress_peers(docs, workload, port)
            assert peers, (workload, url, port)
            host = urlsplit(variables[url]).hostname
            for peer in peers:
                if "ipBlock" in peer:
                    assert host not in services, f"{workload}: {url}'s {host} is in the cluster"
                    continue
                assert "namespaceSelector" not in peer, (workload, peer)
                server = matching(docs, services[host]["spec"]["selector"])
                assert matching(docs, peer["podSelector"]["matchLabels"]) == server, (
                    workload,
                    url,
                    peer,
                )
        reaches_https = bool(egress_peers(docs, workload, 443))
        assert reaches_https == bool(https_port(variables)), (workload, "HTTPS")


def test_every_deployment_of_ours_has_a_disruption_budget(docs):
    """One budget each, so a node drain stops one pod of each at a time
    (maxUnavailable 1: test_scaling_down_does_not_drop_websockets_in_bursts)."""
    budgets = [doc["spec"]["selector"] for doc in docs if doc["kind"] == "PodDisruptionBudget"]
    ours = [
        f"Deployment/{doc['metadata']['name']}"
        for doc in docs
        if doc["kind"] == "Deployment" and any(map(is_ours, containers(doc)))
    ]
    assert {f"Deployment/{name}" for name in ("nginx", "web", "asgi", "worker")} <= set(ours)
    for name in ours:
        selected = [matching(docs, budget["matchLabels"]) for budget in budgets]
        assert selected.count([name]) == 1, name


def test_scaling_down_does_not_drop_websockets_in_bursts(docs):
    behavior = by_name(docs, "HorizontalPodAutoscaler", "asgi")["spec"]["behavior"]["scaleDown"]
    assert behavior["stabilizationWindowSeconds"] >= 300
    assert all(policy["type"] == "Pods" and policy["value"] == 1 for policy in behavior["policies"])
    for name in ("web", "asgi"):
        assert by_name(docs, "HorizontalPodAutoscaler", name)["spec"]["minReplicas"] >= 2
    for doc in docs:
        if doc["kind"] == "PodDisruptionBudget":
            assert doc["spec"].get("maxUnavailable") == 1, doc["metadata"]["name"]


# --- The connection budget (README.md: the connection budget) ---------------------

# PostgreSQL's own default, the least the managed servers the production
# overlay points at give (their smallest tiers allow about this many): the
# number that overlay is held to. The local overlay's db, and Compose's, say
# theirs in their command (max_connections).
POSTGRESQL_DEFAULT_MAX_CONNECTIONS = 100
# Of those, what the app's connections may not take: PostgreSQL's
# superuser_reserved_connections (3, its default), and room for an
# operator's psql or `manage.py shell`, a backup, a monitoring agent (5).
RESERVED_CONNECTIONS = 3 + 5
POOL_SIZE_DEFAULT = script_default(
    "project/settings/base.py", r'env.int\("DATABASE_POOL_SIZE", default=(\d+)\)'
)
GUNICORN_CONF = (BASE_DIR / "deploy/gunicorn.conf.py").read_text()
# Gunicorn's workers a pod: WEB_CONCURRENCY, or a count of the CPUs of its
# limit, as deploy/gunicorn.conf.py says.
GUNICORN_WORKERS = re.search(
    r'^workers = env.int\("WEB_CONCURRENCY", default=0\) or (\d+) \* container_cpus\(\) \+ (\d+)$',
    GUNICORN_CONF,
    re.MULTILINE,
)


def cpus_rounded_up(quantity: str) -> int:
    """A CPU quantity ("2", "500m") as deploy/container-cpus.sh counts it."""
    if quantity.endswith("m"):
        return -(-int(quantity[:-1]) // 1000)
    return -(-float(quantity) // 1)


def max_connections(docs) -> int:
    """The server's limit: the in-cluster db's max_connections, or PostgreSQL's
    default where the overlay points at a server of its own."""
    for doc in docs:
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "db":
            (container,) = containers(doc, init=False)
            arguments = " ".join(container.get("args", []))
            return int(re.search(r"-c max_connections=(\d+)", arguments)[1])
    return POSTGRESQL_DEFAULT_MAX_CONNECTIONS


def container_connections(docs, container) -> int:
    """The most connections to PostgreSQL one container opens: its processes,
    each with a pool of DATABASE_POOL_SIZE. 0 for what is no client of it."""
    variables = container_environment(docs, container)
    if not is_ours(container):
        # pg_dump (the backups' CronJob), one connection to DATABASE_URL.
        return 1 if "DATABASE_URL" in variables and "pg_dump" in str(container) else 0
    if image_name(container["image"]) != f"{PROJECT_NAME}/app":
        return 0  # nginx
    pool = int(variables.get("DATABASE_POOL_SIZE", POOL_SIZE_DEFAULT))
    command = " ".join(container.get("command", []) + container.get("args", []))
    if "start-web.sh" in command:
        processes = int(variables.get("WEB_CONCURRENCY", 0)) or (
            int(GUNICORN_WORKERS[1]) * cpus_rounded_up(container["resources"]["limits"]["cpu"])
            + int(GUNICORN_WORKERS[2])
        )
    else:
        # Daphne, the worker, the migrations, a management command: one process.
        processes = 1
    # Without a pool, each thread that touches the database keeps a connection
    # of its own: Gunicorn's threads, and for Daphne as many as asgiref starts.
    assert pool > 0, (container["name"], "no pool: its connections have no bound")
    return int(processes * pool)


def most_pods(docs, doc) -> int:
    """A workload's pods at the most: its autoscaler's maximum (else its
    replicas), plus the pods a rolling update adds beside them."""
    if doc["kind"] != "Deployment":
        return 1  # a Job or CronJob runs one pod (parallelism 1, Forbid)
    replicas = doc["spec"].get("replicas", 1)
    for scaler in docs:
        if (
            scaler["kind"] == "HorizontalPodAutoscaler"
            and scaler["spec"]["scaleTargetRef"]["name"] == doc["metadata"]["name"]
        ):
            replicas = scaler["spec"]["maxReplicas"]
    surge = doc["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", 0)
    assert isinstance(surge, int), (doc["metadata"]["name"], "maxSurge as a number of pods")
    return replicas + surge


def connection_budget(docs) -> dict[str, int]:
    """Each workload's share: pods at the most, times a pod's connections (its
    init containers run before the others, one at a time)."""
    shares = {}
    for doc in workloads(docs):
        spec = pod_template(doc)["spec"]
        pod = max(
            [container_connections(docs, c) for c in spec.get("initContainers", [])]
            + [sum(container_connections(docs, c) for c in spec["containers"])]
        )
        if pod:
            shares[f"{doc['kind']}/{doc['metadata']['name']}"] = most_pods(docs, doc) * pod
    return shares


def test_the_connection_budget_holds_at_the_autoscalers_maxima(docs):
    """Every pod at its autoscaler's maximum, mid-rollout, each process's pool
    full: no more connections than PostgreSQL takes, less the reserve. More
    replicas, workers, a bigger pool or a new Deployment that break it fail
    here, not as "too many clients" on the busiest day."""
    shares = connection_budget(docs)
    assert {"Deployment/web", "Deployment/asgi", "Deployment/worker", "Job/migrate"} <= set(shares)
    limit = max_connections(docs) - RESERVED_CONNECTIONS
    assert sum(shares.values()) <= limit, (shares, sum(shares.values()), limit)


def test_compose_and_the_cluster_give_the_same_connection_numbers(rendered):
    """max_connections of Compose's db and the local overlay's, and each
    process's pool, are the same numbers on one machine and in the cluster."""
    compose_db = " ".join(COMPOSE_SERVICES["db"]["command"])
    compose_limit = int(re.search(r"-c max_connections=(\d+)", compose_db)[1])
    assert compose_limit == max_connections(rendered["local"])
    for docs in rendered.values():
        for name in ("web", "asgi", "worker", "migrate"):
            kind = "Job" if name == "migrate" else "Deployment"
            (container,) = containers(by_name(docs, kind, name), init=False)
            variables = container_environment(docs, container)
            compose = compose_environment(COMPOSE_SERVICES[name])
            for variable in (
                "DATABASE_POOL_SIZE",
                "DATABASE_STATEMENT_TIMEOUT",
                "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT",
            ):
                assert variables.get(variable) == compose.get(variable), (name, variable)


# --- Uploads (base/media.yaml) ---------------------------------------------------


def volume_mounts(docs, workload: str, volume_name: str) -> dict[str, dict]:
    """Where a workload's Compose volume is mounted in its containers (by
    container name): the mount, with the claim and the pod's readOnly."""
    kind, name = workload.split("/")
    spec = pod_template(by_name(docs, kind, name))["spec"]
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    found = {}
    for container in spec["containers"]:
        for mount in container.get("volumeMounts", []):
            claim = volumes[mount["name"]].get("persistentVolumeClaim")
            if claim and claim["claimName"] == volume_name:
                found[container["name"]] = {**mount, "pod_read_only": claim.get("readOnly", False)}
    return found


def compose_mount(service: str, volume: str) -> tuple[str, bool]:
    """(path, read-only) of a named volume in a Compose service."""
    for entry in COMPOSE_SERVICES[service].get("volumes", []):
        source, path, *mode = entry.split(":")
        if source == volume:
            return path, mode == ["ro"]
    raise AssertionError(f"{service} does not mount {volume} in docker-compose.yml")


# The uploads' claim's access modes: the production overlay's pods spread
# over nodes; the local overlay's one node shares a ReadWriteOnce volume.
MEDIA_ACCESS_MODES = {"local": ["ReadWriteOnce"], "production": ["ReadWriteMany"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_uploads_are_on_a_volume_web_writes_and_nginx_serves(rendered, overlay):
    """The root file systems are read-only: web saves uploads on Compose's
    `media` volume, at Compose's path, and nginx serves the same claim
    read-only where Compose mounts it (nginx/snippets/media.conf), with the
    pod's volume read-only too, so the kubelet never gives it nginx's group.
    Pods of several Deployments on any node share it: ReadWriteMany, but on
    the local overlay's one node."""
    docs = rendered[overlay]
    uploads = {}
    for service in ("web", "nginx"):
        path, read_only = compose_mount(service, "media")
        (mount,) = volume_mounts(docs, f"Deployment/{service}", "media").values()
        assert mount["mountPath"] == path, (service, mount)
        assert mount.get("readOnly", False) == mount["pod_read_only"] == read_only, (
            service,
            mount,
        )
        uploads[service] = mount
    assert not uploads["web"].get("readOnly"), "web must write the uploads"
    claim = by_name(docs, "PersistentVolumeClaim", "media")
    assert claim["spec"]["accessModes"] == MEDIA_ACCESS_MODES[overlay]
    # [demo:begin]
    # The demo's tasks read them in the worker, and delete the expired, as
    # in Compose.
    path, read_only = compose_mount("worker", "media")
    (mount,) = volume_mounts(docs, "Deployment/worker", "media").values()
    assert (mount["mountPath"], mount.get("readOnly", False), mount["pod_read_only"]) == (
        path,
        read_only,
        read_only,
    )
    # [demo:end]


# --- Configuration ---------------------------------------------------------------

CONFIGURATION = (BASE_DIR / "docs" / "configuration.md").read_text()
# The rows of its table: every variable, once (project/tests/test_settings.py).
DOCUMENTED = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", CONFIGURATION, re.MULTILINE))


def test_every_variable_is_a_row_of_the_configuration_table(docs):
    """In our images' containers: every variable set, and every key of the
    ConfigMaps they read. <NAME>_FILE is NAME read from a file (project/env.py)."""
    configmaps = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "ConfigMap"}
    assert "_FILE" in CONFIGURATION
    for doc in workloads(docs):
        for container in containers(doc):
            if not is_ours(container):
                continue
            names = {variable["name"] for variable in container.get("env", [])}
            for source in container.get("envFrom", []):
                names |= set(configmaps[source["configMapRef"]["name"]]["data"])
            names = {name.removesuffix("_FILE") for name in names}
            assert names - DOCUMENTED == set(), (doc["metadata"]["name"], container["name"])


def test_settings_come_from_a_generated_configmap(docs):
    """Its name carries a hash of its content, so a change rolls the pods;
    secrets are files from a generated Secret, never values in the environment."""
    for doc in workloads(docs):
        for container in containers(doc):
            if not is_ours(container):
                continue
            for source in container.get("envFrom", []):
                assert "secretRef" not in source
                assert re.fullmatch(r"django-settings-[a-z0-9]{10}", source["configMapRef"]["name"])
            assert not any("valueFrom" in variable for variable in container.get("env", []))
        for volume in pod_template(doc)["spec"].get("volumes", []):
            if "secret" in volume:
                assert re.fullmatch(r"[a-z-]+-[a-z0-9]{10}", volume["secret"]["secretName"])


# --- Secrets: one contract with Compose --------------------------------------------

# Django's containers, by their name in docker-compose.yml and in the manifests.
DJANGO_WORKLOADS = ("web", "asgi", "worker", "migrate")
# The secrets every one of them reads, each from a file: what Compose's
# secrets service and make-secrets.sh make (deploy/generate_secrets.py).
SECRET_FILES = {"DJANGO_SECRET_KEY_FILE", "DATABASE_PASSWORD_FILE", "REDIS_PASSWORD_FILE"}
# The secrets a deployment may give, each to the one workload that reads it:
# the mail server's password, to the worker, which alone sends. Compose gives
# it only through .env (env_file: a file these tests do not read), the
# production overlay from a Secret of its own, the local overlay not at all.
OPTIONAL_SECRET_FILES = {"EMAIL_PASSWORD_FILE": "worker"}
# Each server's URL, and the variable naming the file with its password.
PASSWORD_FILE_OF = {"DATABASE_URL": "DATABASE_PASSWORD_FILE", "REDIS_URL": "REDIS_PASSWORD_FILE"}
COMPOSE_FILES = ["docker-compose.yml", "docker-compose.dev.yml", "bench/compose.yml"]


def compose_services():
    """(file, service name, service) of every service of every Compose file."""
    for path in COMPOSE_FILES:
        for name, service in compose_file(BASE_DIR / path)["services"].items():
            yield path, name, service


def compose_environment(service: dict) -> dict[str, str]:
    """A Compose service's variables (a mapping, or a list of NAME=value)."""
    variables = service.get("environment") or {}
    if isinstance(variables, list):
        variables = dict(item.partition("=")[::2] for item in variables)
    return {name: str(value) for name, value in variables.items()}


def container_environment(docs, container) -> dict[str, str]:
    """A container's variables: the ConfigMaps' keys it takes, then its own."""
    configmaps = {
        doc["metadata"]["name"]: doc["data"] for doc in docs if doc["kind"] == "ConfigMap"
    }
    variables = {}
    for source in container.get("envFrom", []):
        variables |= configmaps[source["configMapRef"]["name"]]
    for variable in container.get("env", []):
        if "value" in variable:
            variables[variable["name"]] = variable["value"]
        else:
            ref = variable["valueFrom"]["configMapKeyRef"]
            variables[variable["name"]] = configmaps[ref["name"]][ref["key"]]
    return variables


def holds_a_password(value: str) -> bool:
    return "://" in value and bool(urlsplit(value).password)


def secret_file(docs, doc, container, path: str) -> tuple[str, str]:
    """The Secret and key that the file at `path` in `container` is, or a
    failure saying what it is instead."""
    volumes = {volume["name"]: volume for volume in pod_template(doc)["spec"]["volumes"]}
    for mount in container.get("volumeMounts", []):
        folder = mount["mountPath"].rstrip("/") + "/"
        if not path.startswith(folder):
            continue
        source = volumes[mount["name"]]
        name = path.removeprefix(folder)
        # A Secret's volume, or a projected one of several Secrets' keys.
        if "projected" in source:
            sources = [s["secret"] for s in source["projected"]["sources"]]
            assert all("items" in secret for secret in sources), source
            (secret,) = (s for s in sources if name in {i["path"] for i in s["items"]})
        else:
            assert "secret" in source, f"{path}: not from a Secret, but {source}"
            secret = source["secret"]
        secret_name = secret.get("secretName") or secret["name"]
        keys = {item["path"]: item["key"] for item in secret.get("items", [])}
        key = keys.get(name) if "items" in secret else name
        (data,) = (
            d.get("data", {})
            for d in docs
            if d["kind"] == "Secret" and d["metadata"]["name"] == secret_name
        )
        assert key in data, f"{path}: no key {key} in the Secret {secret_name}"
        return secret_name, key
    pytest.fail(f"{doc['metadata']['name']}/{container['name']}: nothing mounted at {path}")


def test_no_variable_or_setting_holds_a_url_with_a_password(docs):
    """`kubectl describe` shows them: passwords are files from Secrets."""
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            for name, value in doc["data"].items():
                assert not holds_a_password(value), (doc["metadata"]["name"], name)
    for doc in workloads(docs):
        for container in containers(doc):
            for name, value in container_environment(docs, container).items():
                assert not holds_a_password(value), (doc["metadata"]["name"], name)


def test_no_compose_variable_holds_a_url_with_a_password():
    """`docker inspect` shows them: passwords are files in the secrets volume."""
    services = 0
    for path, name, service in compose_services():
        services += 1
        for variable, value in compose_environment(service).items():
            assert not holds_a_password(value), (path, name, variable)
    assert services > 10


def test_every_server_url_comes_with_its_password_file(docs):
    """Every Redis and PostgreSQL has a password: whoever is given a URL is
    given the file with the password too, in Compose and Kubernetes alike."""
    for doc in workloads(docs):
        for container in containers(doc):
            # nginx has the settings too (the allowed hosts), and reads no URL.
            if image_name(container["image"]) != f"{PROJECT_NAME}/app":
                continue
            variables = container_environment(docs, container)
            for url, password_file in PASSWORD_FILE_OF.items():
                if url in variables:
                    assert password_file in variables, (doc["metadata"]["name"], url)
    for path, name, service in compose_services():
        variables = compose_environment(service)
        for url, password_file in PASSWORD_FILE_OF.items():
            if variables.get(url):
                assert password_file in variables, (path, name, url)


def test_every_file_variable_names_a_key_of_a_mounted_secret(docs):
    """<NAME>_FILE in any container (PostgreSQL's too) is a file of a Secret
    the pod mounts, and a key that Secret has: a misspelt key or a path
    outside the mount fails here, not in a crash-looping pod."""
    checked = set()
    for doc in workloads(docs):
        for container in containers(doc):
            for name, value in container_environment(docs, container).items():
                if name.endswith("_FILE"):
                    secret_file(docs, doc, container, value)
                    checked.add(name)
    assert checked >= SECRET_FILES


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_compose_and_kubernetes_pass_the_same_secrets(rendered, overlay):
    """The same variables naming the same files, in each of Django's
    containers (init containers too): one contract, so the same settings read
    both. The local overlay's servers have Compose's names: the same URLs too.
    An optional secret may be given to the workload that reads it, and to no
    other, by either."""
    docs = rendered[overlay]
    for name in DJANGO_WORKLOADS:
        optional = {n for n, reader in OPTIONAL_SECRET_FILES.items() if reader == name}
        compose = compose_environment(COMPOSE_SERVICES[name])
        assert {n for n in compose if n.endswith("_FILE")} - optional == SECRET_FILES, name
        doc = by_name(docs, "Job" if name == "migrate" else "Deployment", name)
        for container in containers(doc):
            variables = container_environment(docs, container)
            files = {n: v for n, v in variables.items() if n.endswith("_FILE")}
            assert {n: v for n, v in files.items() if n not in optional} == {
                n: compose[n] for n in SECRET_FILES
            }, (name, container["name"])
            for url in PASSWORD_FILE_OF:
                assert variables[url], (name, url)
                if overlay == "local":
                    assert variables[url] == compose[url], (name, url)


def test_the_production_worker_reads_the_mail_settings(rendered):
    """The production overlay sends mail: EMAIL_URL (TLS, on a port the
    worker's NetworkPolicies open) and DEFAULT_FROM_EMAIL are settings of the
    ConfigMap, for the operator to fill in; the password is EMAIL_PASSWORD_FILE,
    a key of a Secret that the worker's container alone has and mounts. The
    local overlay sends none (the worker logs each message)."""
    docs = rendered["production"]
    (settings,) = (
        doc
        for doc in docs
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("django-settings-")
    )
    assert settings["data"].get("DEFAULT_FROM_EMAIL"), settings["data"]
    url = settings["data"].get("EMAIL_URL", "")
    assert urlsplit(url).scheme in ("smtp+tls", "smtp+ssl"), url
    worker = by_name(docs, "Deployment", "worker")
    (container,) = containers(worker, init=False)
    # From the ConfigMap, not set over it in the Deployment.
    assert {"EMAIL_URL", "DEFAULT_FROM_EMAIL"}.isdisjoint(v["name"] for v in container["env"])
    variables = container_environment(docs, container)
    assert (variables["EMAIL_URL"], variables["DEFAULT_FROM_EMAIL"]) == (
        url,
        settings["data"]["DEFAULT_FROM_EMAIL"],
    )
    # The port the worker will connect to, EMAIL_URL's or its scheme's.
    port = mail_transport(url)["OPTIONS"]["port"]
    assert port in MAIL_PORTS & (egress_ports(docs, "Deployment/worker") or set()), (url, port)
    secret, _ = secret_file(docs, worker, container, variables["EMAIL_PASSWORD_FILE"])
    # Nothing else has the password: no other container (web's, asgi's, the
    # migrations', the worker's init container) names it or mounts its Secret.
    for doc in workloads(docs):
        for other in containers(doc):
            if other is container:
                continue
            assert "EMAIL_PASSWORD_FILE" not in container_environment(docs, other), other["name"]
            volumes = {v["name"]: v for v in pod_template(doc)["spec"].get("volumes", [])}
            for mount in other.get("volumeMounts", []):
                source = volumes[mount["name"]].get("secret", {})
                assert source.get("secretName") != secret, (doc["metadata"]["name"], other["name"])
    local = by_name(rendered["local"], "Deployment", "worker")
    (container,) = containers(local, init=False)
    variables = container_environment(rendered["local"], container)
    assert not variables.get("EMAIL_URL") and "EMAIL_PASSWORD_FILE" not in variables


def test_the_in_cluster_servers_read_the_passwords_django_reads(rendered):
    """PostgreSQL makes the app role with, and Redis requires, the very key of
    the very Secret that Django's pods read, as in Compose one file serves both."""
    docs = rendered["local"]
    web = by_name(docs, "Deployment", "web")
    (django,) = containers(web, init=False)
    django_env = container_environment(docs, django)
    db = by_name(docs, "Deployment", "db")
    (postgres,) = containers(db)
    postgres_env = container_environment(docs, postgres)
    compose_db = compose_environment(COMPOSE_SERVICES["db"])
    assert {n: postgres_env[n] for n in compose_db} == compose_db
    assert secret_file(docs, db, postgres, postgres_env["APP_DB_PASSWORD_FILE"]) == secret_file(
        docs, web, django, django_env["DATABASE_PASSWORD_FILE"]
    )
    redis = by_name(docs, "Deployment", "redis")
    (server,) = containers(redis)
    assert secret_file(docs, redis, server, django_env["REDIS_PASSWORD_FILE"]) == secret_file(
        docs, web, django, django_env["REDIS_PASSWORD_FILE"]
    )
    # Redis's admin password is its own: in a Secret no Django pod mounts.
    admin, _ = secret_file(docs, redis, server, "/secrets/redis_admin_password")
    for doc in workloads(docs):
        if doc is not redis:
            for volume in pod_template(doc)["spec"].get("volumes", []):
                assert admin not in str(volume), doc["metadata"]["name"]


def test_the_in_cluster_redis_requires_the_password_as_composes_does(rendered):
    """Compose's command (its users and their passwords from files, on
    redis-server's standard input) and health check (authenticated: NOAUTH
    is no PONG), word for word."""
    (server,) = containers(by_name(rendered["local"], "Deployment", "redis"))
    compose = COMPOSE_SERVICES["redis"]

    def unescaped(words):  # $$ is Compose's escape for a $ it leaves to the shell
        return [word.replace("$$", "$") for word in words]

    assert "user default on >" in compose["command"][-1]
    assert server.get("command", []) + server["args"] == unescaped(compose["command"])
    kind, check = compose["healthcheck"]["test"]
    assert kind == "CMD-SHELL" and "REDISCLI_AUTH" in check
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert server[probe]["exec"]["command"] == ["sh", "-c", *unescaped([check])], probe


# --- PostgreSQL (local overlay) --------------------------------------------------


def test_the_in_cluster_postgresql_makes_the_app_role_as_compose_does(rendered):
    """The same script as Compose's db, so the app is no superuser on either;
    kustomize reads no file outside the overlay, hence the copy."""
    compose_script = (BASE_DIR / "deploy/postgres/create-app-role.sh").read_text()
    (init,) = (
        doc
        for doc in rendered["local"]
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("db-init-")
    )
    assert init["data"] == {"create-app-role.sh": compose_script}
    db = by_name(rendered["local"], "Deployment", "db")
    (container,) = containers(db)
    env = {variable["name"]: variable.get("value") for variable in container["env"]}
    assert "POSTGRES_USER" not in env  # the superuser is the image's `postgres`
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_template(db)["spec"]["volumes"]}
    assert (
        volumes[mounts["/docker-entrypoint-initdb.d"]]["configMap"]["name"]
        == init["metadata"]["name"]
    )


def test_the_in_cluster_postgresql_is_backed_up_to_a_volume_of_its_own(rendered):
    docs = rendered["local"]
    backup = by_name(docs, "CronJob", "db-backup")
    volumes = pod_template(backup)["spec"]["volumes"]
    claims = {
        v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v
    }
    assert claims == {"db-backups"}
    assert by_name(docs, "PersistentVolumeClaim", "db-backups")
    # Not the database's own volume: a lost volume must not take its backups with it.
    db_claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod_template(by_name(docs, "Deployment", "db"))["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert not claims & db_claims


def test_the_ingress_body_limit_follows_upload_max_mb(tmp_path):
    # Rendered from a copy whose settings.env says 7: the annotation must say
    # 7m, not the placeholder (kustomization.yaml's replacements).
    def upload_max_mb_7(overlay):
        settings_env = overlay / "settings.env"
        settings_env.write_text(
            re.sub(r"^UPLOAD_MAX_MB=\d+$", "UPLOAD_MAX_MB=7", settings_env.read_text(), flags=re.M)
        )

    docs = render_production(tmp_path, upload_max_mb_7)
    annotations = by_name(docs, "Ingress", "django-reference")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "7m"


def test_in_production_nginx_admits_the_ingress_controller_alone(rendered):
    # The one proxy nginx believes (NGINX_TRUSTED_PROXIES): nothing else in
    # the cluster may reach it with a forwarding header of its own.
    policy = by_name(rendered["production"], "NetworkPolicy", "nginx")
    rules = policy["spec"]["ingress"]
    assert rules, "no rule: nothing reaches nginx"
    for rule in rules:
        assert rule.get("from"), f"a rule that admits anyone: {rule}"
        for peer in rule["from"]:
            assert "namespaceSelector" in peer and "podSelector" in peer, peer


def test_production_with_sentry_reaches_https_by_address_alone(tmp_path):
    """The production overlay with SENTRY_DSN set and the https-egress
    component it names in a comment (as its operator would do): every one of
    Django's pods may reach port 443, at addresses only, and no other pod;
    the overlay as shipped, without either, lets no pod reach 443 at all."""

    def with_sentry(overlay):
        kustomization = overlay / "kustomization.yaml"
        text = kustomization.read_text()
        assert "  # - ../../components/https-egress\n" in text
        kustomization.write_text(
            text.replace("  # - ../../components/https-egress", "  - ../../components/https-egress")
        )
        with (overlay / "settings.env").open("a") as settings_env:
            settings_env.write("SENTRY_DSN=https://key@sentry.example.com/1\n")

    docs = render_production(tmp_path, with_sentry)
    test_no_egress_rule_is_open_to_any_address(docs)
    test_django_reaches_its_data_services_by_destination(docs)
    for doc in workloads(docs):
        workload = f"{doc['kind']}/{doc['metadata']['name']}"
        peers = egress_peers(docs, workload, 443)
        if doc["metadata"]["name"] in DJANGO_WORKLOADS:
            assert peers and all("ipBlock" in peer for peer in peers), (workload, peers)
        else:
            assert not peers, (workload, peers)
