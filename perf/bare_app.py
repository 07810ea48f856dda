"""The ceiling: a bare Flask endpoint with no I/O, served by gunicorn with the services' own
settings (the services' worker class, 2 workers, reuse_port). Anything the services do costs
against this."""

import flask

from service_kit import exact_json

_ORDER = {"id": 1, "productId": 1, "qty": 1, "totalPrice": "1500.00", "status": "PENDING"}


def create_wsgi_app() -> flask.Flask:
    app = flask.Flask(__name__)

    @app.post("/orders")
    def create_order() -> tuple[str, int, dict[str, str]]:
        flask.request.get_json()
        return exact_json.dumps(_ORDER), 201, {"Content-Type": "application/json"}

    return app
