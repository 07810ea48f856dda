"""One record per operation of a spec, compiled once at start-up, that both request paths read.

An `Operation` holds what the spec says of an operationId and how the services act on it: its
route, the scopes its `security` asks for (derived here and nowhere else), the header
parameters its handler takes, its integer path parameters, the media types and size its body
may have, its handler, the media type of its answer and its metrics label. Connexion's pipeline
(service_kit/http/app.py) and the fast path (service_kit/http/fast_path.py) call the same
methods of it, in the same order: `admit` (authentication, then scope: before any validation),
then validation (each path its own), then `call`, and the answer is written by
`edge.write_answer`.

An operation must say who may call it: `security: [{bearer: [...]}]`, or `security: []` where
public is meant (at the operation, or once for the whole spec). One that says nothing stops the
start (`OperationsError`): it would otherwise be public by omission."""

import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from service_kit.http import auth
from service_kit.http.caller import Caller

SCHEME = auth.SCHEME
MAX_BODY_BYTES = 1024 * 1024
JSON = "application/json"
ADMITTED = auth.ADMITTED  # the environ key: (operation, caller) once `admit` passed
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_PLAIN_INTEGER = re.compile(r"-?[0-9]+")


class OperationsError(Exception):
    """The spec or the handlers do not make a complete, secured set of operations."""


def plain_integer(text: str) -> int | None:
    """The integer `text` spells in plain ASCII digits (an optional minus sign), else None.
    `int()` alone would also take `1_0`, `+1`, ` 1` or full-width digits."""
    return int(text) if _PLAIN_INTEGER.fullmatch(text) else None


@dataclass(frozen=True)
class HeaderBinding:
    """A header parameter of the spec that the handler names: `Idempotency-Key` is passed as
    `idempotency_key`, read from the WSGI environ key `HTTP_IDEMPOTENCY_KEY`."""

    argument: str
    header: str
    environ_key: str
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str  # upper case, e.g. GET
    path: str  # the spec's path, e.g. /orders/{id}
    scopes: frozenset[str] | None  # what its security asks for; None: public
    headers: tuple[HeaderBinding, ...]
    path_integers: tuple[str, ...]  # path parameters of type integer
    parameters: tuple[Mapping[str, Any], ...]  # every parameter, references resolved
    consumes: tuple[str, ...]  # media types its body may have (none: it takes no body)
    max_body: int
    produces: str  # the media type of its success answer
    handler: Callable[..., Any]
    wants_caller: bool
    label: str  # its requests' `operation` label in the metrics

    def admit(self, environ: dict[str, Any], verifier: auth.TokenVerifier) -> Caller | None:
        """The caller, once authenticated and holding the operation's scopes (None for a
        public operation); Unauthenticated or Forbidden otherwise. Each path calls it once
        per request, before reading or validating anything else of it: a check that must
        hold on both paths before validation (e.g. a rate limit) belongs here."""
        admitted = environ.get(ADMITTED)
        if admitted is not None and admitted[0] is self:  # the fast path handed it on
            return admitted[1]
        caller = None
        if self.scopes is not None:
            caller = verifier.caller(environ.get("HTTP_AUTHORIZATION"))
            auth.authorize(caller, self.scopes)
        environ[ADMITTED] = (self, caller)
        return caller

    def header_arguments(self, environ: Mapping[str, Any]) -> dict[str, str | None]:
        """The header parameters the handler takes, as sent (None when absent)."""
        return {binding.argument: environ.get(binding.environ_key) for binding in self.headers}

    def takes_media_type(self, content_type: str) -> bool:
        """Whether a body sent with this Content-Type is in a media type the spec lists."""
        return content_type.partition(";")[0].strip().lower() in self.consumes

    def call(self, arguments: dict[str, Any], caller: Caller | None) -> Any:
        """The handler's answer to these arguments (path, query, body, headers)."""
        if self.wants_caller:
            return self.handler(**arguments, caller=caller)
        return self.handler(**arguments)


def scopes_by_operation(spec: Mapping[str, Any]) -> dict[str, frozenset[str] | None]:
    """Every operation's required scopes (None: public), the one place they are read from a
    spec; OperationsError naming each operation that declares no security."""
    return {
        operation["operationId"]: _required_scopes(operation, spec)
        for _path, _method, operation in _operations(spec)
    }


def compile_operations(spec: Mapping[str, Any], handlers: object) -> dict[str, Operation]:
    """The records of a spec's operations by operationId, each bound to the method of
    `handlers` named after it; OperationsError if an operation is unsecured or has no
    handler."""
    scopes = scopes_by_operation(spec)
    records = {}
    for path, method, operation in _operations(spec):
        operation_id = operation["operationId"]
        handler = getattr(handlers, operation_id, None)
        if not callable(handler):
            raise OperationsError(f"{operation_id}: {type(handlers).__name__} has no handler")
        accepted = inspect.signature(handler).parameters
        parameters = tuple(
            _resolved(spec, parameter)
            for parameter in [
                *spec["paths"][path].get("parameters", []),
                *operation.get("parameters", []),
            ]
        )
        headers = tuple(
            HeaderBinding(
                argument=_python_name(parameter["name"]),
                header=parameter["name"],
                environ_key="HTTP_" + parameter["name"].upper().replace("-", "_"),
                schema=_resolved(spec, parameter.get("schema", {})),
            )
            for parameter in parameters
            if parameter.get("in") == "header" and _python_name(parameter["name"]) in accepted
        )
        body = _resolved(spec, operation.get("requestBody", {}))
        records[operation_id] = Operation(
            operation_id=operation_id,
            method=method.upper(),
            path=path,
            scopes=scopes[operation_id],
            headers=headers,
            path_integers=tuple(
                parameter["name"]
                for parameter in parameters
                if parameter.get("in") == "path"
                and _resolved(spec, parameter.get("schema", {})).get("type") == "integer"
            ),
            parameters=parameters,
            consumes=tuple(media.lower() for media in body.get("content", {})),
            max_body=MAX_BODY_BYTES,
            produces=_produces(spec, operation),
            handler=handler,
            wants_caller="caller" in accepted,
            label=operation_id,
        )
    return records


def every_scope(specs: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """Every scope the operations of these specs ask for."""
    return frozenset(
        scope
        for spec in specs
        for scopes in scopes_by_operation(spec).values()
        for scope in scopes or ()
    )


def _operations(spec: Mapping[str, Any]) -> Iterable[tuple[str, str, Mapping[str, Any]]]:
    for path, methods in spec.get("paths", {}).items():
        for method in _METHODS:
            operation = methods.get(method)
            if isinstance(operation, dict) and "operationId" in operation:
                yield path, method, operation


def _required_scopes(
    operation: Mapping[str, Any], spec: Mapping[str, Any]
) -> frozenset[str] | None:
    if "security" in operation:
        requirements = operation["security"]
    elif "security" in spec:
        requirements = spec["security"]
    else:
        raise OperationsError(
            f"{operation['operationId']}: the spec declares no `security` for it; write "
            f"`security: [{{{SCHEME}: [scopes]}}]`, or `security: []` if it is meant to be public"
        )
    if not requirements or requirements == [{}]:
        return None
    if len(requirements) != 1 or set(requirements[0]) != {SCHEME}:
        raise OperationsError(f"{operation['operationId']}: one `{SCHEME}` requirement expected")
    return frozenset(requirements[0][SCHEME])


def _produces(spec: Mapping[str, Any], operation: Mapping[str, Any]) -> str:
    for status, response in sorted(operation.get("responses", {}).items()):
        if str(status).startswith("2"):
            content = _resolved(spec, response).get("content", {})
            if content:
                return next(iter(content)).lower()
    return JSON


def _resolved(spec: Mapping[str, Any], node: Any) -> Any:
    """`node`, or what its local `$ref` (`#/components/...`) points to."""
    while isinstance(node, dict) and "$ref" in node:
        reference = node["$ref"]
        if not reference.startswith("#/"):
            raise OperationsError(f"{reference}: only references within the spec are followed")
        node = spec
        for part in reference[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _python_name(header: str) -> str:
    return header.lower().replace("-", "_")
