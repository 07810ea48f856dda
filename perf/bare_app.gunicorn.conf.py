# gunicorn settings of the ceiling endpoint: the services' own settings, on BARE_PORT.
import os

from service_kit.gunicorn_settings import web_settings

globals().update(web_settings(port=int(os.environ["BARE_PORT"]), workers=2))
