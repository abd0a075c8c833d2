"""The floor: a Flask endpoint that only parses the JSON body and returns it."""

from flask import Flask, request


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/cds-services/<service_id>")
    def echo(service_id: str):
        return request.get_json()

    return app
