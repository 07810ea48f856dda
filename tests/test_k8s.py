"""infra/k8s renders (`kubectl kustomize`, every overlay) into objects the Kubernetes schemas
accept, and that agree with the code: commands name real modules, every variable is one the
configuration reads, probes and ports are the processes' own, every pod is locked down, and the
network policies open the paths the architecture draws and no other."""

import base64
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from sqlalchemy.engine import make_url

from devstack.service_users import mysql_grants
from service_kit.messaging.broker_definitions import definitions
from service_kit.process.files import RUN_DIR
from service_kit.process.gunicorn_settings import web_settings
from service_kit.process.worker import HEALTHY_WITHIN_S, heartbeat_file
from tests.conftest import _absent
from tests.test_infra import variables_read_by_configuration

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "infra" / "k8s"
OVERLAYS = sorted(path.name for path in (K8S / "overlays").iterdir())
KUBERNETES_VERSION = "1.31.0"  # the oldest minor still supported upstream when this was written
PROCESSES = ("product-service", "product-worker", "order-service", "order-worker")


def render(overlay: str, tmp_path: Path) -> list[dict]:
    """The overlay's objects, rendered from a copy of infra/k8s whose dev secrets are made as
    `make infra/k8s/overlays/dev/.env` makes them (the checkout has none)."""
    if shutil.which("kubectl") is None:
        _absent("no kubectl (Debian's package; `make test` installs it as root)")
    copy = tmp_path / "k8s"
    generated = shutil.ignore_patterns(".env", "*-service.env", "jwks.json")  # a user's own
    shutil.copytree(K8S, copy, ignore=generated)
    subprocess.run(
        [sys.executable, str(ROOT / "infra" / "generate_env.py"), "overlays/dev/.env", "--k8s-dev"],
        cwd=copy,
        check=True,
    )
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(copy / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return [document for document in yaml.safe_load_all(rendered) if document]


@pytest.fixture(scope="module", params=OVERLAYS)
def objects(request, tmp_path_factory) -> list[dict]:
    return render(request.param, tmp_path_factory.mktemp(request.param))


def of_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def pod_specs(objects: list[dict]) -> dict[str, dict]:
    """Every pod template, by its owner's name."""
    owners = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet", "Job")]
    return {o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in owners}


def test_every_object_validates_against_the_kubernetes_schemas(objects):
    for document in objects:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def autoscaled(objects: list[dict]) -> dict[str, dict]:
    """The autoscalers, by the Deployment each scales."""
    return {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa
        for hpa in of_kind(objects, "HorizontalPodAutoscaler").values()
    }


def least_replicas(objects: list[dict], deployment: dict) -> int:
    scaler = autoscaled(objects).get(deployment["metadata"]["name"])
    return scaler["spec"]["minReplicas"] if scaler else deployment["spec"]["replicas"]


def test_every_process_is_deployed_replicated_and_probed(objects):
    deployments = of_kind(objects, "Deployment")
    assert set(deployments) == set(PROCESSES)
    for name, deployment in deployments.items():
        (app,) = deployment["spec"]["template"]["spec"]["containers"]
        assert app["readinessProbe"] and app["livenessProbe"], name
        requests, limits = app["resources"]["requests"], app["resources"]["limits"]
        assert set(requests) == {"cpu", "memory"} and "memory" in limits, name
        # An autoscaler owns its Deployment's scale: a `replicas` beside it would reset the
        # scale at every apply.
        assert ("replicas" in deployment["spec"]) == (name not in autoscaled(objects)), name
        if deployment["metadata"]["namespace"] != "order-product-dev":  # dev: one of each
            assert least_replicas(objects, deployment) >= 2, name
        if name.endswith("-worker"):  # the heartbeat of the worker's own name, read by sh
            probe = app["livenessProbe"]["exec"]["command"]
            assert app["readinessProbe"]["exec"]["command"] == probe
            worker = f"{name.removesuffix('-worker')}-service worker"
            heartbeat = Path("/app") / heartbeat_file_relative(worker)
            assert probe == [
                "sh",
                "-c",
                f"test $(( $(date +%s) - $(stat -c %Y {heartbeat}) )) -lt {HEALTHY_WITHIN_S:.0f}",
            ]
        else:
            assert app["readinessProbe"]["httpGet"]["path"] == "/ready"
            assert app["livenessProbe"]["httpGet"]["path"] == "/health"
            # Requests only: a CPU limit throttles a web pod's bursts into latency.
            assert "cpu" not in limits, name


def heartbeat_file_relative(worker: str) -> Path:
    return RUN_DIR / heartbeat_file(worker).name


def test_commands_name_real_modules_and_files(objects):
    for owner, spec in pod_specs(objects).items():
        for container in spec.get("initContainers", []) + spec["containers"]:
            text = " ".join(container.get("command", []) + container.get("args", []))
            for module in re.findall(r"-m ([\w.]+)", text):
                assert importlib.util.find_spec(module) is not None, (owner, module)
            for conf in re.findall(r"-c (\S+\.py)", text):
                assert (ROOT / conf).is_file(), (owner, conf)


def test_every_variable_is_one_the_configuration_reads(objects):
    known = variables_read_by_configuration()
    config = next(o for o in objects if o["kind"] == "ConfigMap" and "DEPLOYMENT" in o["data"])
    assert config["data"]["DEPLOYMENT"] == "multi-host"
    assert set(config["data"]) <= known, set(config["data"]) - known
    secrets = {
        name: set(secret.get("data", {}))
        for name, secret in of_kind(objects, "Secret").items()
        if "credentials" in name
    }
    for keys in secrets.values():
        assert keys <= known, keys - known
    for name, deployment in of_kind(objects, "Deployment").items():
        (app,) = deployment["spec"]["template"]["spec"]["containers"]
        assert {variable["name"] for variable in app.get("env", [])} <= known, name


def test_ports_probes_and_services_agree(objects):
    config = next(o for o in objects if o["kind"] == "ConfigMap" and "DEPLOYMENT" in o["data"])
    services = of_kind(objects, "Service")
    for service in ("product", "order"):
        port = int(config["data"][f"{service.upper()}_PORT"])
        deployment = of_kind(objects, "Deployment")[f"{service}-service"]
        (app,) = deployment["spec"]["template"]["spec"]["containers"]
        metrics_port = int(config["data"][f"{service.upper()}_METRICS_PORT"])
        assert metrics_port not in (port, port + 1)
        assert app["ports"] == [
            {"name": "http", "containerPort": port},
            {"name": "metrics", "containerPort": metrics_port},
        ]
        assert services[f"{service}-service"]["spec"]["ports"][0]["port"] == port
        assert config["data"][f"{service.upper()}_SERVICE_URL"] == (
            f"http://{service}-service:{port}"
        )
        worker = of_kind(objects, "Deployment")[f"{service}-worker"]
        (app,) = worker["spec"]["template"]["spec"]["containers"]
        assert app["ports"] == [{"name": "metrics", "containerPort": port + 1}]  # port + 1


def test_metrics_are_scraped_on_their_own_ports_from_monitoring_only(objects):
    """Each web service serves its metrics on <S>_METRICS_PORT (so its API port answers 404 at
    /metrics), every process's pods tell Prometheus's discovery where, and only the namespace
    `monitoring` reaches those ports."""
    config = next(o for o in objects if o["kind"] == "ConfigMap" and "DEPLOYMENT" in o["data"])
    deployments = of_kind(objects, "Deployment")
    metrics_ports = set()
    for process in PROCESSES:
        service = process.split("-")[0].upper()
        variable = "METRICS_PORT" if process.endswith("-service") else "WORKER_METRICS_PORT"
        port = int(config["data"].get(f"{service}_{variable}", 0)) or (
            int(config["data"][f"{service}_PORT"]) + 1  # the worker's default
        )
        template = deployments[process]["spec"]["template"]
        (app,) = template["spec"]["containers"]
        assert {"name": "metrics", "containerPort": port} in app["ports"], process
        assert template["metadata"]["annotations"] == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(port),
            "prometheus.io/path": "/metrics",
        }, process
        metrics_ports.add(port)
    policies = of_kind(objects, "NetworkPolicy")
    public = {p["port"] for p in policies["public-apis"]["spec"]["ingress"][0]["ports"]}
    assert not public & metrics_ports
    (rule,) = policies["metrics-from-monitoring"]["spec"]["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert {p["port"] for p in rule["ports"]} == metrics_ports
    # the policy selects every pod that serves them
    (selector,) = policies["metrics-from-monitoring"]["spec"]["podSelector"]["matchExpressions"]
    for process in PROCESSES:
        labels = deployments[process]["spec"]["template"]["metadata"]["labels"]
        assert labels[selector["key"]] in selector["values"], process
    # and only those pods hold a port the policy opens to monitoring: no other ingress to them
    for name, policy in policies.items():
        if name != "metrics-from-monitoring":
            for ingress in policy["spec"].get("ingress", []):
                assert not {p["port"] for p in ingress.get("ports", [])} & metrics_ports, name


def test_termination_outlasts_the_drain(objects):
    graceful_s = web_settings(port=3000, workers=1)["graceful_timeout"]
    for name, deployment in of_kind(objects, "Deployment").items():
        spec = deployment["spec"]["template"]["spec"]
        (app,) = spec["containers"]
        pause = 0
        if "lifecycle" in app:
            pause = int(app["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert spec["terminationGracePeriodSeconds"] >= pause + graceful_s + 5, name


def test_autoscalers_and_disruption_budgets_cover_the_processes(objects):
    deployments = of_kind(objects, "Deployment")
    for autoscaler in of_kind(objects, "HorizontalPodAutoscaler").values():
        assert autoscaler["spec"]["scaleTargetRef"]["name"] in deployments
    assert set(of_kind(objects, "HorizontalPodAutoscaler")) == {"product-service", "order-service"}
    budgets = of_kind(objects, "PodDisruptionBudget")
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [
            b
            for b in budgets.values()
            if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        if least_replicas(objects, deployment) == 1:
            # One replica (dev): a budget keeping it would block every node drain.
            assert covering == [], name
        else:
            assert len(covering) == 1, name
            assert covering[0]["spec"]["minAvailable"] < least_replicas(objects, deployment)


def test_every_pod_is_locked_down(objects):
    for owner, spec in pod_specs(objects).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, owner
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, owner
        assert spec["automountServiceAccountToken"] is False, owner
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, (owner, container["name"])
            assert context["capabilities"] == {"drop": ["ALL"]}, (owner, container["name"])
            ours = container["image"].split(":")[0].endswith("order-product")
            if ours:  # our image writes only to its memory volumes
                assert context["readOnlyRootFilesystem"] is True, (owner, container["name"])
                assert ":" in container["image"] and not container["image"].endswith(":latest")
            else:  # a release of someone else's, not a tag that moves
                assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+(-\w+)?", container["image"]), owner


def test_network_policies_draw_the_architecture(objects):
    policies = of_kind(objects, "NetworkPolicy")
    assert policies["default-deny"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
    }
    calls = {
        (p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
         rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
         rule["ports"][0]["port"])
        for p in policies.values()
        if p["spec"]["policyTypes"] == ["Egress"] and "matchLabels" in p["spec"]["podSelector"]
        and "app.kubernetes.io/name" in p["spec"]["podSelector"]["matchLabels"]
        for rule in p["spec"]["egress"]
    }  # fmt: skip
    assert calls == {
        ("order-service", "product-service", 3000),
        ("product-service", "order-service", 4000),
    }
    public = policies["public-apis"]["spec"]
    assert {p["port"] for p in public["ingress"][0]["ports"]} == {3000, 4000}
    assert "from" not in public["ingress"][0]  # the APIs, from anywhere; nothing else is


def test_migrations_run_once_per_apply_with_their_own_credentials(objects):
    jobs = of_kind(objects, "Job")
    assert set(jobs) == {"migrate-product", "migrate-order"}
    for service in ("product", "order"):
        job = jobs[f"migrate-{service}"]
        # Gone once finished: the next apply creates it again, nothing to delete by hand.
        assert job["spec"]["ttlSecondsAfterFinished"] == 0
        (app,) = job["spec"]["template"]["spec"]["containers"]
        assert app["command"] == ["python", "-m", f"{service}_service.migrate"]
        secrets = {s["secretRef"]["name"] for s in app["envFrom"] if "secretRef" in s}
        (secret,) = secrets  # its own service's only (in dev, with the generator's suffix)
        assert secret.startswith(f"{service}-service-credentials"), secret


def test_new_pods_wait_for_the_schema_with_a_deadline_and_resources(objects):
    for name, deployment in of_kind(objects, "Deployment").items():
        (wait,) = deployment["spec"]["template"]["spec"]["initContainers"]
        service = name.split("-")[0]
        *command, deadline = wait["command"]
        assert command == ["python", "-m", f"{service}_service.migrate", "--wait"], name
        assert 0 < int(deadline) <= 900, name
        assert set(wait["resources"]["requests"]) == {"cpu", "memory"}, name
        assert "memory" in wait["resources"]["limits"], name


def test_our_pods_run_as_the_images_user(objects):
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text()
    uid = int(re.search(r"^USER (\d+)$", dockerfile, re.MULTILINE)[1])
    assert f"--uid {uid}" in dockerfile
    for owner, spec in pod_specs(objects).items():
        if any(c["image"].split(":")[0].endswith("order-product") for c in spec["containers"]):
            assert spec["securityContext"]["runAsUser"] == uid, owner


def test_the_dev_overlays_redis_is_bounded_below_its_memory_limit(tmp_path):
    redis = pod_specs(render("dev", tmp_path))["redis"]["containers"][0]
    command = " ".join(redis["command"])
    maxmemory = re.search(r"--maxmemory (\d+)mb", command)
    assert maxmemory and "--maxmemory-policy allkeys-lru" in command
    limit = re.fullmatch(r"(\d+)Mi", redis["resources"]["limits"]["memory"])
    assert int(maxmemory[1]) * 1.5 <= int(limit[1])  # room for Redis's own overhead


def test_egress_to_the_servers_goes_to_configured_networks_only(objects):
    spec = of_kind(objects, "NetworkPolicy")["infrastructure-and-dns"]["spec"]
    servers = spec["egress"][1]
    assert {port["port"] for port in servers["ports"]} >= {3306, 6379, 5672}
    for peer in servers["to"]:
        assert "ipBlock" not in peer or peer["ipBlock"]["cidr"] != "0.0.0.0/0", peer
    for policy in of_kind(objects, "NetworkPolicy").values():
        assert "0.0.0.0/0" not in str(policy), policy["metadata"]["name"]


def _redis_users(command: list[str]) -> dict[str, list[str]]:
    """The `--user` rules of a redis-server command line (a `sh -c` script or a list)."""
    words = shlex.split(command[-1]) if command[:2] == ["sh", "-c"] else command
    users: dict[str, list[str]] = {}
    for index, word in enumerate(words):
        if word == "--user":
            rules = []
            for rule in words[index + 2 :]:
                if rule.startswith("--"):
                    break
                rules.append(">password" if rule.startswith(">") else rule)
            users[words[index + 1]] = rules
    return users


def test_the_dev_overlay_gives_each_service_its_own_users(tmp_path):
    """As compose does: each service reaches MariaDB, Redis and RabbitMQ as its own user, with
    the grants of infra/mysql/init.sh, the Redis rules of the compose file and the broker
    definitions of infra/rabbitmq; no service holds an administrative password."""
    objects = render("dev", tmp_path)
    secrets = of_kind(objects, "Secret")
    config_maps = of_kind(objects, "ConfigMap")
    pods = pod_specs(objects)
    infrastructure = next(s for n, s in secrets.items() if n.startswith("infrastructure-"))
    admin = base64.b64decode(infrastructure["data"]["MYSQL_ROOT_PASSWORD"]).decode()
    for service, database in (("product", "products"), ("order", "orders")):
        prefix, user = service.upper(), f"{service}-service"
        (credentials,) = [s for n, s in secrets.items() if n.startswith(f"{user}-credentials")]
        urls = {k: base64.b64decode(v).decode() for k, v in credentials["data"].items()}
        db = make_url(urls[f"{prefix}_DATABASE_URL"])
        assert (db.username, db.host, db.database) == (user, "mariadb", database)
        assert admin not in urls[f"{prefix}_DATABASE_URL"]
        for kind, scheme in (("REDIS", "redis"), ("BROKER", "amqp")):
            parts = urlsplit(urls[f"{prefix}_{kind}_URL"])
            assert (parts.scheme, parts.username) == (scheme, user), kind
            password = base64.b64decode(infrastructure["data"][f"{prefix}_{kind}_PASSWORD"])
            assert parts.password == password.decode(), kind
    # MariaDB: infra/mysql/init.sh's users and grants, their passwords from the Secret.
    (script,) = next(c for n, c in config_maps.items() if n.startswith("mariadb-init"))[
        "data"
    ].values()
    grants = re.findall(r"^GRANT (.+) ON (\w+)\.\* TO '([\w-]+)'@'%';$", script, re.MULTILINE)
    assert {user: (rights, db) for rights, db, user in grants} == mysql_grants()
    (mariadb,) = pods["mariadb"]["containers"]
    passwords = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in mariadb["env"]}
    for user in ("PRODUCT", "ORDER"):
        assert passwords[f"{user}_DB_PASSWORD"] == f"{user}_DB_PASSWORD"
        assert f"IDENTIFIED BY '${{{user}_DB_PASSWORD}}'" in script
    # Redis: the compose file's users and rules, the default user off.
    (redis,) = pods["redis"]["containers"]
    assert _redis_users(redis["command"]) == _redis_users(redis_rules_command())
    assert "--requirepass" not in " ".join(redis["command"])
    # RabbitMQ: infra/rabbitmq's configuration, definitions and password script, no default
    # (administrative) user.
    rabbitmq_files = next(c for n, c in config_maps.items() if n.startswith("rabbitmq"))["data"]
    assert json.loads(rabbitmq_files["definitions.json"]) == definitions()
    for name in ("rabbitmq.conf", "start.sh"):
        assert rabbitmq_files[name] == (ROOT / "infra/rabbitmq" / name).read_text(), name
    (rabbitmq,) = pods["rabbitmq"]["containers"]
    assert rabbitmq["command"] == ["/etc/rabbitmq/start.sh"]
    env = {e["name"] for e in rabbitmq["env"]}
    assert env == {"PRODUCT_BROKER_PASSWORD", "ORDER_BROKER_PASSWORD"}
    mounts = {m["mountPath"]: m.get("subPath") for m in rabbitmq["volumeMounts"]}
    assert mounts["/etc/rabbitmq/definitions.json"] == "definitions.json"
    conf = rabbitmq_files["rabbitmq.conf"]
    assert "definitions.local.path = /etc/rabbitmq/definitions.json" in conf


def redis_rules_command() -> list[str]:
    """The compose file's redis-server command."""
    compose = yaml.safe_load((ROOT / "infra/docker-compose.yml").read_text())
    return compose["services"]["redis"]["command"]
