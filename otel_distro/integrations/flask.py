"""What the distro adds to the contrib Flask instrumentation: ``error.type`` named as on every other framework.

Flask turns an unhandled exception into a 500 response before the WSGI middleware sees it, so the contrib
instrumentation records ``error.type`` as ``"500"`` where the ASGI middleware records the exception's class. The
conventions ask for the class when there was an exception: Flask's ``got_request_exception`` signal notes it in the
request's ``flask.g``, and the response attributes (span and duration metric alike) take it from there.
"""

from __future__ import annotations

from typing import Any

_ERROR_TYPE = "_otel_distro_error_type"  # on flask.g: per request
_installed: list[tuple[Any, str, Any]] = []


def _note_exception(_sender: Any, exception: BaseException, **_extra: Any) -> None:
    import flask

    setattr(flask.g, _ERROR_TYPE, type(exception).__qualname__)


def _exception_class_wins(original: Any) -> Any:
    def add_response_attributes(span: Any, status: str, headers: Any, duration_attrs: Any = None,
                                *args: Any, **kwargs: Any) -> None:
        original(span, status, headers, duration_attrs, *args, **kwargs)
        import flask

        error_type = getattr(flask.g, _ERROR_TYPE, None) if flask.has_app_context() else None
        if error_type is None:
            return
        if isinstance(duration_attrs, dict) and "error.type" in duration_attrs:
            duration_attrs["error.type"] = error_type
        if span is not None and span.is_recording():
            span.set_attribute("error.type", error_type)

    return add_response_attributes


def instrument() -> None:
    """After the contrib Flask instrumentor: the exception's class becomes ``error.type``."""
    if _installed:
        return
    import flask
    from opentelemetry.instrumentation import wsgi

    flask.got_request_exception.connect(_note_exception)
    original = wsgi.add_response_attributes
    wsgi.add_response_attributes = _exception_class_wins(original)
    _installed.append((wsgi, "add_response_attributes", original))


def uninstrument() -> None:
    import flask

    flask.got_request_exception.disconnect(_note_exception)
    while _installed:
        owner, name, original = _installed.pop()
        setattr(owner, name, original)
