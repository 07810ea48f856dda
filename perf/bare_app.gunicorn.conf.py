# gunicorn settings of the ceiling endpoint: the services' own settings, on BARE_PORT.
import os

from service_kit.process.gunicorn_settings import web_settings

# The same access-log choice as the services under measurement.
globals().update(
    web_settings(
        port=int(os.environ["BARE_PORT"]),
        workers=2,
        access_log=os.environ.get("ORDER_ACCESS_LOG", "1") == "1",
    )
)
