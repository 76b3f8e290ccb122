"""The exporters inside the processors and readers that a declarative configuration built (SDK 1.45).

``opentelemetry-configuration`` builds whole providers from ``OTEL_CONFIG_FILE``; its public API gives no hook
between an exporter and the processor or reader it feeds. To redact what leaves the process (and keep the OTLP
exporters' connections per process), each exporter is swapped for its wrapper inside the processor that holds it;
the log pipeline's own processors (the bridge's drain, the GenAI content policy) go before the file's.
Each provider's own exit hook is taken off as well: the distro's bounded shutdown flushes and closes them once.
The meter provider gets the distro's views (seconds-shaped buckets...) after the file's, each one leaving alone
the instruments a view of the file selects: views are fixed when the provider is built, and the package builds it.

There is no public path that does the same: when the private parts are not as tested, the file is not used
(:class:`Unusable`) and the service runs on the environment's settings, rather than export unredacted.
Tested with opentelemetry-sdk 1.45.0 and 1.45.1.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.metrics.view import View

from otel_distro._sdk_private import FastPath

Wrap = Callable[[Any], Any]


class UnlessTheFileSelects(View):
    """One of the distro's views, leaving alone every instrument that a view of the file selects."""

    def __init__(self, own: View, file_views: Sequence[View]) -> None:  # a copy: View.__init__ would re-check
        vars(self).update(vars(own))  # the view's selection and stream, as the distro built them
        self.own = own
        self._file_views = tuple(file_views)

    def _match(self, instrument: Any) -> bool:
        return super()._match(instrument) and not any(view._match(instrument) for view in self._file_views)


class Unusable(RuntimeError):
    """The providers' private parts are not as tested: their exporters cannot be wrapped."""


def _span_processors(provider: Any) -> tuple[Any, ...]:
    return provider._active_span_processor._span_processors


def _log_processors(provider: Any) -> tuple[Any, ...]:
    return provider._multi_log_record_processor._log_record_processors


def _swap_exporter(processor: Any, wrap: Wrap) -> None:
    batch = getattr(processor, "_batch_processor", None)
    if batch is not None:
        batch._exporter = wrap(batch._exporter)
    elif hasattr(processor, "span_exporter"):  # SimpleSpanProcessor
        processor.span_exporter = wrap(processor.span_exporter)
    elif hasattr(processor, "_exporter"):  # SimpleLogRecordProcessor
        processor._exporter = wrap(processor._exporter)
    else:
        raise Unusable(f"{type(processor).__name__} holds no exporter the distro knows")


def _no_exit_hook(provider: Any, attribute: str = "_atexit_handler") -> None:
    handler = getattr(provider, attribute)  # the logger provider calls it _at_exit_handler
    if handler is not None:
        atexit.unregister(handler)
        setattr(provider, attribute, None)


def _adopt_tracer_provider(provider: Any, wrap: Wrap) -> None:
    for processor in _span_processors(provider):
        _swap_exporter(processor, wrap)
    _no_exit_hook(provider)


def _adopt_logger_provider(provider: Any, wrap: Wrap, leading: Sequence[Any]) -> None:
    multi = provider._multi_log_record_processor
    processors = _log_processors(provider)
    for processor in processors:
        _swap_exporter(processor, wrap)
    with multi._lock:
        multi._log_record_processors = (*leading, *processors)
    _no_exit_hook(provider, "_at_exit_handler")


def _add_views(provider: Any, own: Sequence[View]) -> None:
    config = provider._sdk_config  # SdkConfiguration: every reader's storage reads its views per new instrument
    file_views = tuple(config.views)
    config.views = (*file_views, *(UnlessTheFileSelects(view, file_views) for view in own))


def _adopt_meter_provider(provider: Any, wrap: Wrap, wrap_pull: Wrap, own_views: Sequence[View]) -> None:
    _add_views(provider, own_views)
    for reader in provider._metric_readers:
        if hasattr(reader, "_exporter"):  # PeriodicExportingMetricReader
            reader._exporter = wrap(reader._exporter)
        elif hasattr(reader, "_receive_metrics"):  # a pull reader: Prometheus
            wrap_pull(reader)
        else:
            raise Unusable(f"{type(reader).__name__} holds no exporter the distro knows")
    _no_exit_hook(provider)


def _refuse(*_args: Any) -> None:
    raise Unusable("the SDK's providers are not laid out as the distro was tested with")


adopt_tracer_provider: FastPath[None] = FastPath("declarative_tracer_provider", _adopt_tracer_provider, _refuse)
adopt_logger_provider: FastPath[None] = FastPath("declarative_logger_provider", _adopt_logger_provider, _refuse)
adopt_meter_provider: FastPath[None] = FastPath("declarative_meter_provider", _adopt_meter_provider, _refuse)
