"""infra/ cannot run here (no Docker engine), so it is checked statically: every service has a
healthcheck and waits for healthy dependencies, every environment variable it sets is one the
configuration reads, ports agree with the configuration and the README, the broker and the
workers yield the CPU to the web containers, and MySQL is durable unless the opt-in dev-tuning
file is added."""

import importlib.util
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


def test_every_service_has_a_healthcheck():
    for name, service in SERVICES.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_services_wait_for_healthy_dependencies():
    for name in OUR_SERVICES:
        depends_on = SERVICES[name]["depends_on"]
        assert {"mysql", "redis", "rabbitmq"} <= set(depends_on), name
        for dependency, condition in depends_on.items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)


def test_the_web_goes_first_on_a_shared_host():
    background = {"rabbitmq", "product-worker", "order-worker"}
    for name, service in SERVICES.items():
        shares = service.get("cpu_shares", 1024)  # Docker's default weight
        assert (shares < 1024) is (name in background), name


def test_environment_variables_are_ones_the_configuration_reads():
    known = variables_read_by_configuration()
    for name in OUR_SERVICES:
        unknown = set(SERVICES[name]["environment"]) - known
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
