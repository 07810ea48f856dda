"""infra/ cannot run here (no Docker engine), so it is checked statically: every service has a
healthcheck and waits for healthy dependencies, every environment variable it sets is one the
configuration reads, ports agree with the configuration and the README, the broker and the
workers yield the CPU to the web containers, MySQL is durable unless the opt-in dev-tuning file
is added, and the trust boundaries hold: only the APIs are published, every password comes from
the generated infra/.env, and each service has its own user on MySQL, Redis and RabbitMQ with
rights on its own data only (tests/e2e/test_least_privilege.py runs the services as those
users on this machine's servers)."""

import importlib.util
import json
import os
import re
from pathlib import Path

import pytest
import yaml

from order_service.config import load_config as order_config
from product_service.config import load_config as product_config

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "infra/docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OUR_SERVICES = ["product-service", "product-worker", "order-service", "order-worker"]


class RecordingEnv(dict):
    """An empty environment that remembers every variable the configuration asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key, default=None):  # noqa: ANN001, ANN201 - dict's signature
        self.asked.add(key)
        return super().get(key, default)


def variables_read_by_configuration() -> set[str]:
    env = RecordingEnv()
    product_config(env)
    order_config(env)
    return env.asked


# Their images hold their program only: nothing in them can probe (and nothing waits on them).
WITHOUT_HEALTHCHECK = {"otel-collector", "jaeger"}
OBSERVABILITY = {"prometheus", "grafana", "otel-collector", "jaeger"}
LOADTEST = {"locust-master", "locust-worker"}
# Steps each `up` runs once before the processes needing them: nothing to probe, nor restart.
ONE_SHOT = {"migrate-product", "migrate-order", "keys"}


def test_every_service_has_a_healthcheck():
    for name, service in SERVICES.items():
        if name not in WITHOUT_HEALTHCHECK | ONE_SHOT:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in WITHOUT_HEALTHCHECK:
        assert not any(name in s.get("depends_on", {}) for s in SERVICES.values()), name


def test_observability_is_a_profile_of_its_own():
    profiled = {name for name, s in SERVICES.items() if s.get("profiles")}
    assert profiled == OBSERVABILITY | LOADTEST
    assert all(SERVICES[name]["profiles"] == ["observability"] for name in OBSERVABILITY)
    assert all(SERVICES[name]["profiles"] == ["loadtest"] for name in LOADTEST)


def test_prometheus_scrapes_every_process_where_it_serves_its_metrics():
    scrape = yaml.safe_load((ROOT / "infra/prometheus/prometheus.yml").read_text())
    targets = {
        job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
        for job in scrape["scrape_configs"]
    }
    for service, load in (("product", product_config), ("order", order_config)):
        web_env = SERVICES[f"{service}-service"]["environment"]
        config = load({k: v for k, v in web_env.items() if k.endswith("_PORT")})
        # The web service's metrics on a port of their own, which only the compose network
        # reaches (its API port answers 404 at /metrics)
        assert config.metrics_port and config.metrics_port != config.port
        assert targets[f"{service}-service"] == [f"{service}-service:{config.metrics_port}"]
        assert f"{config.metrics_port}:" not in str(SERVICES[f"{service}-service"]["ports"])
        assert targets[f"{service}-worker"] == [f"{service}-worker:{config.worker_metrics_port}"]
        worker_env = SERVICES[f"{service}-worker"]["environment"]
        assert worker_env[f"{service.upper()}_HOST"] == "0.0.0.0"  # reachable by Prometheus
    assert set(targets) == set(OUR_SERVICES)


def test_grafana_is_provisioned_with_the_dashboard_and_prometheus():
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in SERVICES["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == "/var/lib/grafana/dashboards"
    providers = yaml.safe_load(
        (ROOT / "infra/grafana/provisioning/dashboards/dashboards.yml").read_text()
    )
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    sources = yaml.safe_load(
        (ROOT / "infra/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert sources["datasources"][0]["url"] == "http://prometheus:9090"
    dashboard = json.loads((ROOT / "infra/grafana/dashboards/order-product.json").read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {sources["datasources"][0]["uid"]}


def test_spans_go_to_the_collector_and_on_to_jaeger():
    collector = yaml.safe_load((ROOT / "infra/otel-collector/config.yaml").read_text())
    assert collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    assert collector["exporters"]["otlp/jaeger"]["endpoint"] == "jaeger:4317"
    assert "http://otel-collector:4318" in COMPOSE_TEXT  # the endpoint the header tells to set


def test_services_wait_for_healthy_dependencies():
    for name in OUR_SERVICES:
        depends_on = SERVICES[name]["depends_on"]
        assert {"mysql", "redis", "rabbitmq"} <= set(depends_on), name
        for dependency, condition in depends_on.items():
            expected = (
                "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            )
            assert condition == {"condition": expected}, (name, dependency)


def test_every_long_running_service_restarts_unless_stopped():
    for name, service in SERVICES.items():
        assert service["restart"] == ("no" if name in ONE_SHOT else "unless-stopped"), name


def test_migrations_run_once_per_start_before_the_processes_of_their_service():
    for service in ("product", "order"):
        migrate = SERVICES[f"migrate-{service}"]
        assert migrate["command"] == ["python", "-m", f"{service}_service.migrate"]
        assert migrate["environment"][f"{service.upper()}_DATABASE_URL"].startswith(
            f"mysql+pymysql://{service}-service:"
        )  # its own user
        for process in (f"{service}-service", f"{service}-worker"):
            assert "migrate" not in " ".join(SERVICES[process]["command"]), process
            assert SERVICES[process]["depends_on"][f"migrate-{service}"] == {
                "condition": "service_completed_successfully"
            }


def test_every_image_is_pinned_to_a_release():
    for name, service in SERVICES.items():
        if "image" in service:
            assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+(-\w+)?", service["image"]), name
        else:
            assert name in OUR_SERVICES or name in ONE_SHOT, name  # built from infra/Dockerfile
    base = re.search(r"^FROM (\S+)", (ROOT / "infra/Dockerfile").read_text(), re.MULTILINE)[1]
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim", base), base


def test_the_web_goes_first_on_a_shared_host():
    background = {"rabbitmq", "product-worker", "order-worker"}
    for name, service in SERVICES.items():
        shares = service.get("cpu_shares", 1024)  # Docker's default weight
        assert (shares < 1024) is (name in background), name


def test_environment_variables_are_ones_the_configuration_reads():
    known = variables_read_by_configuration()
    for name in OUR_SERVICES:
        # OTEL_* variables are the OpenTelemetry SDK's own (service_kit/telemetry/tracing.py).
        unknown = set(SERVICES[name]["environment"]) - known - {"OTEL_EXPORTER_OTLP_ENDPOINT"}
        assert not unknown, f"{name} sets variables no configuration reads: {unknown}"


def test_readme_documents_exactly_the_variables_the_configuration_reads():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") :].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)`(?:, `([A-Z_]+)`)?", table, re.MULTILINE))
    names = {name for pair in documented for name in pair if name}
    assert names == variables_read_by_configuration()


def test_ports_agree_with_configuration_and_readme():
    readme = (ROOT / "README.md").read_text()
    for service, config in (
        ("product-service", product_config({})),
        ("order-service", order_config({})),
    ):
        assert SERVICES[service]["ports"] == [f"{config.port}:{config.port}"]
        assert f"http://127.0.0.1:{config.port}" in readme
        assert str(config.port) in SERVICES[service]["healthcheck"]["test"][-1]


def test_commands_name_real_modules_and_files():
    for name in OUR_SERVICES:
        command = SERVICES[name]["command"]
        text = command if isinstance(command, str) else " ".join(command)
        for module in re.findall(r"-m ([\w.]+)", text):
            assert importlib.util.find_spec(module) is not None, (name, module)
        for conf in re.findall(r"-c (\S+\.py)", text):
            assert (ROOT / conf).is_file(), (name, conf)
        build = SERVICES[name]["build"]
        assert (ROOT / "infra" / build["context"] / build["dockerfile"]).resolve().is_file()


@pytest.mark.parametrize("worker", ["product-worker", "order-worker"])
def test_worker_healthchecks_name_the_workers(worker):
    healthcheck = SERVICES[worker]["healthcheck"]["test"]
    module = SERVICES[worker]["command"][-1]
    source = Path(importlib.util.find_spec(module).origin).read_text()
    assert f'"{healthcheck[-1]}"' in source  # the name run_tasks beats under


def test_dockerfile_copies_what_exists():
    dockerfile = (ROOT / "infra/Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+)", dockerfile, re.MULTILINE):
        assert (ROOT / source).exists(), source


def test_mysql_is_durable_unless_dev_tuning_is_chosen():
    base = " ".join(SERVICES["mysql"]["command"])
    assert "innodb-flush-log-at-trx-commit" not in base and "sync-binlog" not in base
    tuning = yaml.safe_load((ROOT / "infra/docker-compose.dev-tuning.yml").read_text())
    flags = set(tuning["services"]["mysql"]["command"])
    assert {
        "--innodb-flush-log-at-trx-commit=2",
        "--sync-binlog=0",
        "--innodb-buffer-pool-size=1G",
        "--max-connections=500",
    } <= flags


def test_only_the_two_apis_are_published():
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    assert published - OBSERVABILITY - LOADTEST == {"product-service", "order-service"}
    for name in published & (OBSERVABILITY | LOADTEST):  # the tools' UIs: on this host only
        assert all(port.startswith("127.0.0.1:") for port in SERVICES[name]["ports"]), name


COMPOSE_TEXT = (ROOT / "infra/docker-compose.yml").read_text()
GENERATED_PASSWORDS = set(
    re.findall(r'^    "([A-Z_]+)",$', (ROOT / "infra/generate_env.py").read_text(), re.MULTILINE)
)


def test_every_secret_comes_from_the_generated_env_file():
    # Compose interpolates ${NAME:?…} from infra/.env; no password is written in infra/.
    used = set(re.findall(r"\$\{([A-Z_]+):\?run make infra/\.env\}", COMPOSE_TEXT))
    assert used == GENERATED_PASSWORDS
    # The others: where spans go, and the load generator's scenario and token (the operator's
    # own, on the command line), unset unless said.
    optional = ("OTEL_EXPORTER_OTLP_ENDPOINT:-}", "SCENARIO:-seed-1000}", "LOCUST_TOKEN:-}")
    text = COMPOSE_TEXT
    for variable in optional:
        text = text.replace("${" + variable, "")
    assert not re.findall(r"\$\{(?![A-Z_]+:\?run make infra/\.env\})", text)
    urls = re.findall(r"\w+(?:\+\w+)?://(?:\$\{[^}]*\}|[^\s\"'$])+", COMPOSE_TEXT)
    with_credentials = [url for url in urls if "@" in url]
    assert len(with_credentials) == 6  # a database, Redis and broker URL per service
    for url in with_credentials:
        credentials = url.split("://", 1)[1].rpartition("@")[0]
        assert re.fullmatch(r"[\w-]+:\$\{[A-Z_]+:\?run make infra/\.env\}", credentials), url
    for text in (COMPOSE_TEXT, *(p.read_text() for p in (ROOT / "infra").rglob("*.sh"))):
        assert "guest" not in text and "root:root" not in text


@pytest.mark.parametrize(
    ("service", "user"), [("product", "product-service"), ("order", "order-service")]
)
def test_each_service_uses_its_own_user_everywhere(service, user):
    for name in (f"{service}-service", f"{service}-worker"):
        env = SERVICES[name]["environment"]
        urls = {key: value for key, value in env.items() if key.endswith("_URL") and "@" in value}
        assert set(urls) == {f"{service.upper()}_{k}_URL" for k in ("DATABASE", "REDIS", "BROKER")}
        for url in urls.values():
            assert url.split("://", 1)[1].startswith(f"{user}:"), (name, url)
        assert not any(
            key.startswith("ORDER_" if service == "product" else "PRODUCT_")
            and key.endswith(("DATABASE_URL", "REDIS_URL", "BROKER_URL"))
            for key in env
        )


def test_mysql_users_have_rights_on_their_own_database_only():
    script = (ROOT / "infra/mysql/init.sh").read_text()
    grants = re.findall(r"^GRANT .*$", script, re.MULTILINE)
    assert sorted(grants) == [
        "GRANT ALL PRIVILEGES ON orders.* TO 'order-service'@'%';",
        "GRANT ALL PRIVILEGES ON products.* TO 'product-service'@'%';",
    ]
    for service, database in (("product", "products"), ("order", "orders")):
        url = SERVICES[f"{service}-service"]["environment"][f"{service.upper()}_DATABASE_URL"]
        assert url.endswith(f"@mysql:3306/{database}")
    mounted = SERVICES["mysql"]["volumes"][0].split(":")
    assert (ROOT / "infra" / mounted[0]).resolve() == ROOT / "infra/mysql/init.sh"
    assert mounted[1].startswith("/docker-entrypoint-initdb.d/")
    assert os.access(ROOT / "infra/mysql/init.sh", os.X_OK)  # run, not sourced


def test_redis_has_no_anonymous_user_and_each_service_its_own_keys():
    from devstack.service_users import redis_rules

    rules = redis_rules()
    assert rules.pop("default") == ["off"]
    for service, namespace in (("product", "product"), ("order", "order")):
        own = rules.pop(f"{service}-service")
        assert own[0] == "on" and own[1].startswith(">${")
        assert [rule for rule in own if rule.startswith("~")] == [f"~{namespace}:*"]
        assert "-@dangerous" in own and "+@all" in own
        assert {"-scan", "-randomkey"} <= set(own)  # KEYS is dangerous already
        bootstrap = (ROOT / f"{service}_service/bootstrap.py").read_text()
        assert f'namespace="{namespace}"' in bootstrap  # the cache's key prefix
    assert rules == {}


def test_rabbitmq_definitions_are_generated_from_the_event_contract():
    from service_kit.messaging.broker_definitions import definitions

    committed = json.loads((ROOT / "infra/rabbitmq/definitions.json").read_text())
    assert committed == definitions(), "run make generate"
    config = (ROOT / "infra/rabbitmq/rabbitmq.conf").read_text()
    path = re.search(r"^definitions\.local\.path = (\S+)$", config, re.MULTILINE)[1]
    volumes = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["rabbitmq"]["volumes"]}
    assert volumes[path] == "./rabbitmq/definitions.json"
    assert volumes["/etc/rabbitmq/rabbitmq.conf"] == "./rabbitmq/rabbitmq.conf"
    start = (ROOT / "infra/rabbitmq/start.sh").read_text()
    for user in committed["users"]:
        password = f"{user['name'].split('-')[0].upper()}_BROKER_PASSWORD"
        assert f'change_password {user["name"]} "${password}"' in start
        assert password in SERVICES["rabbitmq"]["environment"]
    assert os.access(ROOT / "infra/rabbitmq/start.sh", os.X_OK)


def test_the_load_generator_runs_the_locustfile_that_exists():
    for name in LOADTEST:
        (volume,) = SERVICES[name]["volumes"]
        source, target = volume.split(":")[:2]
        assert (ROOT / "infra" / source).resolve() == ROOT / "perf" / "locustfile.py"
        assert SERVICES[name]["command"][1] == target
    assert SERVICES["locust-worker"]["command"][-1] == "locust-master"
    # The locust image holds Locust and its dependencies only, not this project's.
    source = (ROOT / "perf" / "locustfile.py").read_text()
    imported = set(re.findall(r"^(?:import|from) (\w+)", source, re.MULTILINE))
    assert imported <= {"json", "os", "random", "urllib", "locust"}, imported


def test_the_event_contract_names_a_publisher_for_every_event_type():
    from service_kit.messaging import events

    published = [key for keys in events.publishers().values() for key in keys]
    assert sorted(published) == sorted(events.event_types())  # each type, by one service only


def test_the_web_services_verify_tokens_with_the_generated_key():
    uid = re.search(r"^USER (\d+)$", (ROOT / "infra/Dockerfile").read_text(), re.MULTILINE)[1]
    keys = SERVICES["keys"]
    assert keys["secrets"] == ["jwks"] and keys["user"] == "0"
    # The host's 0600 file, copied for the image's user alone.
    assert keys["command"] == [
        "install", "-m", "0400", "-o", uid, "-g", uid, "/run/secrets/jwks", "/keys/jwks.json"
    ]  # fmt: skip
    assert keys["volumes"] == ["auth-keys:/keys"]
    for name in ("product-service", "order-service"):
        service = SERVICES[name]
        assert "secrets" not in service
        assert service["volumes"] == ["auth-keys:/keys:ro"]
        assert service["environment"]["AUTH_JWKS_FILE"] == "/keys/jwks.json"
    assert COMPOSE["secrets"]["jwks"] == {"file": "./jwks.json"}
    assert 'with_name("jwks.json")' in (ROOT / "infra/generate_env.py").read_text()
    assert "infra/jwks.json" in (ROOT / ".gitignore").read_text().split()


def test_redis_is_bounded_and_evicts_as_a_cache():
    command = SERVICES["redis"]["command"]
    assert command[command.index("--maxmemory") + 1] == "256mb"
    assert command[command.index("--maxmemory-policy") + 1] == "allkeys-lru"
