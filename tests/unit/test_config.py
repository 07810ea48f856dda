"""Configuration comes from the environment only, and bad values stop start-up clearly."""

import os
import subprocess
import sys

import pytest

from order_service.config import load_config as order_config
from product_service.config import load_config as product_config
from service_kit.config import ConfigError, redacted
from service_kit.process.gunicorn_settings import web_settings


def test_defaults_need_no_server():
    product, order = product_config({}), order_config({})
    assert (product.port, order.port) == (3000, 4000)
    assert product.database_url == "sqlite:///var/product.db"
    assert order.database_url == "sqlite:///var/order.db"
    assert product.peer_url == "http://127.0.0.1:4000"
    assert order.peer_url == "http://127.0.0.1:3000"
    assert product.web_workers == 2 and not product.validate_responses
    assert product.host == order.host == "127.0.0.1"  # not every interface unless asked
    assert product.metrics_port == order.metrics_port == 0  # metrics on the API port
    assert order_config({"ORDER_METRICS_PORT": "4002"}).metrics_port == 4002


def test_one_shell_configures_both_services():
    env = {
        "PRODUCT_PORT": "3100",
        "ORDER_PORT": "4100",
        "PRODUCT_DATABASE_URL": "mysql+pymysql://root@127.0.0.1/products",
        "ORDER_DATABASE_URL": "mysql+pymysql://root@127.0.0.1/orders",
    }
    product, order = product_config(env), order_config(env)
    assert (product.port, order.port) == (3100, 4100)
    assert product.peer_url == "http://127.0.0.1:4100"  # follows the peer's port
    assert order.peer_url == "http://127.0.0.1:3100"
    assert order.database_url.endswith("/orders")
    assert product_config({"ORDER_SERVICE_URL": "http://orders:4000/"}).peer_url == (
        "http://orders:4000"
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PRODUCT_PORT": "http"}, "PRODUCT_PORT"),
        ({"PRODUCT_PORT": "70000"}, "PRODUCT_PORT"),
        ({"PRODUCT_WEB_WORKERS": "0"}, "PRODUCT_WEB_WORKERS"),
        ({"PRODUCT_DATABASE_URL": "postgresql://x/y"}, "PRODUCT_DATABASE_URL"),
        ({"PRODUCT_DATABASE_URL": "not a url"}, "PRODUCT_DATABASE_URL"),
        ({"ORDER_SERVICE_URL": "ftp://x"}, "ORDER_SERVICE_URL"),
        ({"ORDER_SERVICE_TIMEOUT_MS": "1"}, "ORDER_SERVICE_TIMEOUT_MS"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"PRODUCT_HOST": "0.0.0.0; rm"}, "PRODUCT_HOST"),
        ({"PRODUCT_WEB_CONNECTIONS": "5"}, "PRODUCT_WEB_CONNECTIONS"),
        ({"PRODUCT_IDLE_TIMEOUT_S": "0"}, "PRODUCT_IDLE_TIMEOUT_S"),
        ({"PRODUCT_HEADER_TIMEOUT_S": "1.5"}, "PRODUCT_HEADER_TIMEOUT_S"),
        ({"PRODUCT_BODY_TIMEOUT_S": "-1"}, "PRODUCT_BODY_TIMEOUT_S"),
        ({"DEPLOYMENT": "cloud"}, "DEPLOYMENT"),
        ({"REDIS_URL": "redis+sentinel://s1:26379"}, "REDIS_URL"),  # no primary named
        ({"REDIS_URL": "redis+cluster://node-a,node-b:6379"}, "REDIS_URL"),
        ({"PRODUCT_RATE_LIMITS": "product-reads=100"}, "PRODUCT_RATE_LIMITS"),
        ({"PRODUCT_RATE_LIMITS": "product-reads=0/60"}, "PRODUCT_RATE_LIMITS"),
        ({"RATE_LIMIT_FACTOR": "0"}, "RATE_LIMIT_FACTOR"),
        ({"TRUSTED_PROXIES": "10.0.0.0/8,proxy"}, "TRUSTED_PROXIES"),
        ({"PRODUCT_METRICS_PORT": "3000"}, "PRODUCT_METRICS_PORT=3000 is PRODUCT_PORT"),
        ({"PRODUCT_METRICS_PORT": "3001"}, "is PRODUCT_WORKER_METRICS_PORT"),
        ({"PRODUCT_METRICS_PORT": "65536"}, "PRODUCT_METRICS_PORT"),
    ],
)
def test_invalid_values_are_named(env, named):
    with pytest.raises(ConfigError, match=named):
        product_config(env)


MULTI_HOST = {
    "DEPLOYMENT": "multi-host",
    "PRODUCT_DATABASE_URL": "mysql+pymysql://product@db/product",
    "REDIS_URL": "redis+sentinel://:pw@s1:26379,s2:26379/cache/0",
    "BROKER_URL": "amqp://product:pw@rabbitmq:5672/",
}


def test_a_multi_host_deployment_takes_servers_for_everything_shared():
    config = product_config(MULTI_HOST)
    assert config.deployment == "multi-host"
    assert config.redis_url == MULTI_HOST["REDIS_URL"]
    assert product_config({**MULTI_HOST, "REDIS_URL": "redis+cluster://a:7000,b:7001"})


@pytest.mark.parametrize(
    ("left_out", "replaced_by", "named"),
    [
        ("REDIS_URL", "", "file cache"),
        ("PRODUCT_DATABASE_URL", "sqlite:///var/product.db", "SQLite"),
        ("BROKER_URL", "sqlite:///var/events.db", "spool"),
    ],
)
def test_a_multi_host_deployment_refuses_what_one_host_keeps(left_out, replaced_by, named):
    with pytest.raises(ConfigError, match=named):
        product_config({**MULTI_HOST, left_out: replaced_by})
    assert product_config({**MULTI_HOST, left_out: replaced_by, "DEPLOYMENT": ""})


def test_gunicorn_refuses_to_start_on_bad_configuration():
    env = {**os.environ, "ORDER_PORT": "not-a-port"}
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    result = subprocess.run(
        [gunicorn, "-c", "order_service/gunicorn.conf.py", "order_service.app:create_wsgi_app()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "configuration error: ORDER_PORT='not-a-port' is not an integer" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("PRODUCT_DATABASE_URL", "postgresql://app:s3cret-pw@db/products"),
        ("REDIS_URL", "http://:s3cret-pw@cache:6379/0"),
        ("BROKER_URL", "http://app:s3cret-pw@mq:5672/"),
        ("ORDER_SERVICE_URL", "ftp://app:s3cret-pw@orders"),
    ],
)
def test_a_refused_url_is_named_without_its_password(name, url):
    with pytest.raises(ConfigError, match=name) as refused:
        product_config({name: url})
    assert "s3cret-pw" not in str(refused.value) and "***" in str(refused.value)


def test_the_web_services_listen_where_they_are_told():
    assert web_settings(port=3000, workers=1)["bind"] == "127.0.0.1:3000"
    assert web_settings(host="0.0.0.0", port=3000, workers=1)["bind"] == "0.0.0.0:3000"
    assert web_settings(host="::", port=3000, workers=1)["bind"] == "[::]:3000"


def test_connection_limits_reach_the_web_workers():
    limits = order_config({"ORDER_WEB_CONNECTIONS": "50", "ORDER_IDLE_TIMEOUT_S": "20"})
    limits = limits.connection_limits
    assert (limits.connections, limits.idle_timeout_s) == (50, 20)
    assert (limits.header_timeout_s, limits.body_timeout_s) == (10, 30)  # the defaults
    settings = web_settings(port=4000, workers=1, limits=limits)
    assert (settings["worker_connections"], settings["keepalive"]) == (50, 20)

    class Worker:  # what gunicorn's post_fork hook receives
        pass

    worker = Worker()
    settings["post_fork"](None, worker)
    assert worker.connection_limits is limits


@pytest.mark.parametrize(
    "url",
    [
        "mysql+pymysql://orders:pa#ss/w?rd@db:3306/orders",
        "amqp://orders:p/w#1?x@rabbitmq:5672/%2F",
        "redis://orders:a?b#c/d@redis:6379/0",
        "redis+sentinel://orders:x#y/z@s1:26379,s2:26379/primary/0",
        "redis+cluster://orders:q?#/@n1:6379,n2:6379",
    ],
)
def test_a_password_is_redacted_whatever_it_holds(url):
    password = url.split("://")[1].rpartition("@")[0].partition(":")[2]
    shown = redacted(url)
    assert password not in shown and "***" in shown
    assert shown.endswith(url.rpartition("@")[2])  # the hosts and the rest are kept


def test_ready_runs_its_checks_once_per_few_seconds_whoever_asks():
    from service_kit.errors import DependencyUnavailable
    from service_kit.http.health import Readiness

    now, runs, up = [0.0], [], [True]

    def broker() -> None:
        runs.append(now[0])
        if not up[0]:
            raise ConnectionError("refused")

    readiness = Readiness({"broker": broker}, max_age_s=5, clock=lambda: now[0])
    for _ in range(100):
        assert readiness.answer() == {"status": "ok", "checks": {"broker": "ok"}}
    assert runs == [0.0]  # one connection for a hundred calls
    up[0], now[0] = False, 4.9
    assert readiness.answer()["status"] == "ok"  # a state at most 5 s old
    now[0] = 5.0
    with pytest.raises(DependencyUnavailable, match="broker: ConnectionError"):
        readiness.answer()
    assert runs == [0.0, 5.0]
