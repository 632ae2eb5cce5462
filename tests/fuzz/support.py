"""What the fuzz tests share: the OpenAPI document's operations, known at collection time."""

from typing import Any

from entrypoints.http.app import create_app
from tests.http.support import make_settings

OPENAPI_PATH = "/schema/openapi.json"
HTTP_METHODS = ("get", "put", "post", "patch", "delete")


def describe_app() -> dict[str, Any]:
    """The OpenAPI document. It does not depend on the database, so an app that is never
    started can describe itself at collection time; the tests compare it with the document
    the running app serves."""
    app = create_app(make_settings("postgresql://collection.invalid/none"))
    return app.openapi_schema.to_schema()


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(METHOD, path) of every operation of the document, sorted."""
    return sorted(
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    )


def ids(listed: list[tuple[str, str]]) -> list[str]:
    return [f"{method} {path}" for method, path in listed]


DOCUMENT = describe_app()
OPERATIONS = operations(DOCUMENT)
