# gunicorn settings of product-service; `make run` and the tests start it with
#   gunicorn -c product_service/gunicorn.conf.py 'product_service.app:create_wsgi_app()'
# The configuration is read and checked here, in the master, so a bad value stops start-up.
from product_service.config import load_config
from service_kit.config import exit_on_config_error
from service_kit.process.files import keep_files_private
from service_kit.process.gunicorn_settings import web_settings

keep_files_private()  # inherited by the web workers
_config = exit_on_config_error(load_config)
globals().update(
    web_settings(
        service="product",
        host=_config.host,
        port=_config.port,
        workers=_config.web_workers,
        log_level=_config.log_level,
        log_format=_config.log_format,
        access_log=_config.access_log,
        limits=_config.connection_limits,
        metrics_port=_config.metrics_port,
    )
)
