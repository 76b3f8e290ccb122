"""Each builder on its own, with in-memory exporters and readers."""

from __future__ import annotations

import datetime
import logging
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.sdk._logs import LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from otel_distro import diagnostics, distro, logs, metrics, resource, traces
from otel_distro.logs.bridge import BridgeHandler
from otel_distro.settings import Settings, load


@dataclass
class Pipeline:
    settings: Settings
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    records: InMemoryLogRecordExporter

    def tracer_provider(self):
        provider = traces.build(self.settings, resource.build(self.settings), span_exporters=[])
        provider.add_span_processor(SimpleSpanProcessor(self.spans))
        return provider

    def meter_provider(self):
        return metrics.build(self.settings, resource.build(self.settings), [self.reader])

    def logger_provider(self):
        provider = logs.build(self.settings, resource.build(self.settings), log_exporters=[])
        provider.add_log_record_processor(SimpleLogRecordProcessor(self.records))
        return provider

    def histogram(self, name: str):
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == name:
                        return m
        raise AssertionError(f"no metric {name}")


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline(load({"OTEL_SERVICE_NAME": "unit"}), InMemorySpanExporter(),
                    InMemoryMetricReader(), InMemoryLogRecordExporter())


# ----------------------------------------------------------------- traces

def test_sampler_follows_the_standard_variables() -> None:
    ratio = traces.sampler(load({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                                 "OTEL_TRACES_SAMPLER_ARG": "0.01"}))
    assert isinstance(ratio, ParentBased)
    assert "0.01" in ratio.get_description()
    plain = traces.sampler(load({"OTEL_TRACES_SAMPLER": "traceidratio",
                                 "OTEL_TRACES_SAMPLER_ARG": "0.5"}))
    assert isinstance(plain, TraceIdRatioBased)
    assert traces.sampler(load({"OTEL_TRACES_SAMPLER": "always_off"})).get_description() == "AlwaysOffSampler"


def test_spans_carry_the_resource(pipeline: Pipeline) -> None:
    tracer = pipeline.tracer_provider().get_tracer("t")
    with tracer.start_as_current_span("work"):
        pass
    (span,) = pipeline.spans.get_finished_spans()
    assert span.resource.attributes["service.name"] == "unit"


def test_otlp_exporter_uses_the_signal_endpoint() -> None:
    (exporter,) = traces.exporters(load({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}))
    assert "http://c:4318/v1/traces" in repr(vars(exporter))


# ----------------------------------------------------------------- metrics

def test_second_histograms_get_semconv_buckets(pipeline: Pipeline) -> None:
    meter = pipeline.meter_provider().get_meter("m")
    meter.create_histogram("job.duration", unit="s").record(0.3)
    point = pipeline.histogram("job.duration").data.data_points[0]
    assert tuple(point.explicit_bounds) == metrics.SECONDS_BUCKETS


def test_advisory_buckets_win_over_the_seconds_view(pipeline: Pipeline) -> None:
    meter = pipeline.meter_provider().get_meter("m")
    advised = (0.01, 0.02, 0.04)
    meter.create_histogram("llm.duration", unit="s",
                           explicit_bucket_boundaries_advisory=advised).record(0.03)
    point = pipeline.histogram("llm.duration").data.data_points[0]
    assert tuple(point.explicit_bounds) == advised


def test_non_second_histograms_keep_the_sdk_default(pipeline: Pipeline) -> None:
    meter = pipeline.meter_provider().get_meter("m")
    meter.create_histogram("payload.size", unit="By").record(300)
    point = pipeline.histogram("payload.size").data.data_points[0]
    assert tuple(point.explicit_bounds) != metrics.SECONDS_BUCKETS


def test_temporality_preferences() -> None:
    from opentelemetry.sdk.metrics import Counter, UpDownCounter
    from opentelemetry.sdk.metrics.export import AggregationTemporality as T

    assert metrics.temporality("cumulative")[Counter] is T.CUMULATIVE
    assert metrics.temporality("delta")[Counter] is T.DELTA
    assert metrics.temporality("delta")[UpDownCounter] is T.CUMULATIVE


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_gets_unlocked_copies_of_the_collection_locks(pipeline: Pipeline) -> None:
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader

    with open(os.devnull, "w") as sink:
        reader = PeriodicExportingMetricReader(ConsoleMetricExporter(out=sink), export_interval_millis=3_600_000)
        provider = metrics.build(pipeline.settings, resource.build(pipeline.settings), [reader])
        provider.get_meter("m").create_counter("c").add(1)
        reader.collect()
        consumer = provider._measurement_consumer
        parent = [reader._export_lock, consumer._lock, *(s._lock for s in consumer._reader_storages.values())]
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report whether every lock was replaced, then leave at once
            child = [reader._export_lock, consumer._lock, *(s._lock for s in consumer._reader_storages.values())]
            os.write(write, b"1" if all(a is not b for a, b in zip(child, parent, strict=True)) else b"0")
            os._exit(0)
        os.close(write)
        renewed = os.read(read, 1)
        os.close(read)
        os.waitpid(pid, 0)
        provider.shutdown()
    assert renewed == b"1"


def test_prometheus_port_taken_warns_and_keeps_going(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = load({"OTEL_EXPORTER_PROMETHEUS_PORT": str(port)})
        with caplog.at_level(logging.WARNING, logger="otel_distro"):
            reader, endpoint = metrics.prometheus_reader(settings)
    assert endpoint is None and reader is not None
    (record,) = [r for r in caplog.records if "Prometheus endpoint" in r.getMessage()]
    assert str(port) in record.getMessage()


@pytest.mark.parametrize(("host", "open_to_all"), [("0.0.0.0", True), ("127.0.0.1", False), ("localhost", False)])
def test_a_prometheus_endpoint_open_beyond_loopback_is_said_in_one_line(
        host: str, open_to_all: bool, caplog: pytest.LogCaptureFixture) -> None:
    settings = load({"OTEL_EXPORTER_PROMETHEUS_HOST": host, "OTEL_EXPORTER_PROMETHEUS_PORT": "0"})
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        _reader, endpoint = metrics.prometheus_reader(settings)
    try:
        said = [r.getMessage() for r in caplog.records if "open to every network" in r.getMessage()]
        assert len(said) == (1 if open_to_all else 0)
        if open_to_all:
            assert "target_info" in said[0] and "OTEL_EXPORTER_PROMETHEUS_HOST" in said[0]
    finally:
        if endpoint is not None:
            endpoint.close()


# ----------------------------------------------------------------- logs

@pytest.fixture
def bridged(pipeline: Pipeline) -> Iterator[Pipeline]:
    logs.remove_bridge()
    logs.install_bridge(pipeline.logger_provider(), logging.INFO)
    yield pipeline
    logs.remove_bridge()


def _bridges() -> int:
    return sum(isinstance(h, (BridgeHandler, LoggingHandler)) for h in logging.getLogger().handlers)


def test_log_records_carry_the_active_trace(bridged: Pipeline) -> None:
    logging.getLogger().setLevel(logging.INFO)
    tracer = bridged.tracer_provider().get_tracer("t")
    with tracer.start_as_current_span("request") as span:
        logging.getLogger("app").info("inside %s", "request")
    logs.bridge().flush()  # the bridge exports from its worker thread
    (record,) = [r for r in bridged.records.get_finished_logs()
                 if r.log_record.body == "inside request"]
    assert record.log_record.trace_id == span.get_span_context().trace_id
    assert record.log_record.span_id == span.get_span_context().span_id


def test_bridge_is_installed_once_and_survives_reconfiguration(bridged: Pipeline) -> None:
    logs.install_bridge(bridged.logger_provider(), logging.INFO)
    assert _bridges() == 1
    logging.basicConfig(level=logging.INFO, force=True)
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False,
                              "root": {"handlers": [], "level": "INFO"}})
    assert _bridges() == 1


def test_sdk_records_are_not_exported_back(bridged: Pipeline) -> None:
    logging.getLogger("opentelemetry.exporter.otlp").error("export failed")
    logs.bridge().flush()
    assert not [r for r in bridged.records.get_finished_logs() if r.log_record.body == "export failed"]


def test_records_below_the_export_level_stay_local(bridged: Pipeline) -> None:
    logging.getLogger().setLevel(logging.DEBUG)
    logging.getLogger("app").debug("chatty")
    logging.getLogger("app").info("loud")
    logs.bridge().flush()
    assert [r for r in bridged.records.get_finished_logs() if r.log_record.body == "loud"]
    assert not [r for r in bridged.records.get_finished_logs() if r.log_record.body == "chatty"]


def test_extras_become_attributes_and_the_event_name_is_lifted_out(bridged: Pipeline) -> None:
    logging.getLogger().setLevel(logging.INFO)
    log = logging.getLogger("shop")
    log.info("checkout", extra={"order_id": 7, "total": 9.5, "tags": ["a", "b"], "missing": None,
                                "when": datetime.date(2026, 1, 2), "otel.event.name": "shop.checkout",
                                "event.name": "ignored.deprecated"})
    log.info("old style", extra={"event.name": "shop.legacy"})
    try:
        raise KeyError("sku-9")
    except KeyError:
        log.exception("lookup failed")
    logs.bridge().flush()
    by_body = {r.log_record.body: r.log_record for r in bridged.records.get_finished_logs()}
    checkout = by_body["checkout"]
    assert dict(checkout.attributes) == {"order_id": 7, "total": 9.5, "tags": ("a", "b"), "when": "2026-01-02"}
    assert checkout.event_name == "shop.checkout"
    assert by_body["old style"].event_name == "shop.legacy" and not by_body["old style"].attributes
    failed = dict(by_body["lookup failed"].attributes)
    assert failed["exception.type"] == "KeyError" and failed["exception.message"] == "'sku-9'"
    assert 'raise KeyError("sku-9")' in failed["exception.stacktrace"]
    assert not {"lineno", "pathname", "funcName", "msg", "args", "exc_info"} & set(failed)


# ----------------------------------------------------------------- resource

def test_resource_identifies_the_process(caplog: pytest.LogCaptureFixture) -> None:
    settings = load({"OTEL_SERVICE_NAME": "shop", "OTEL_DISTRO_SERVICE_VERSION": "2.0",
                     "OTEL_DISTRO_ENVIRONMENT": "staging", "K8S_POD_NAME": "shop-1",
                     "K8S_NAMESPACE_NAME": "prod",
                     "OTEL_RESOURCE_ATTRIBUTES": "team=core,service.version=2.1"})
    attrs = resource.build(settings).attributes
    assert attrs["service.name"] == "shop"
    assert attrs["service.version"] == "2.1"  # the user's attributes win
    assert attrs["deployment.environment.name"] == "staging"
    assert (attrs["k8s.pod.name"], attrs["k8s.namespace.name"]) == ("shop-1", "prod")
    assert attrs["team"] == "core"
    assert re.fullmatch(r"[0-9a-f-]{36}", attrs["service.instance.id"])
    for key in ("host.name", "os.type", "process.pid", "process.runtime.name"):
        assert key in attrs
    assert not caplog.records


def test_missing_service_name_warns_once_and_uses_the_program(caplog: pytest.LogCaptureFixture) -> None:
    settings = load({})
    with caplog.at_level(logging.WARNING):
        attrs = resource.build(settings).attributes
    assert attrs["service.name"] == settings.program_name
    assert [r.getMessage() for r in caplog.records if "OTEL_SERVICE_NAME" in r.getMessage()] != []
    assert len(caplog.records) == 1


def test_container_id_from_cgroup(tmp_path) -> None:
    cid = "a" * 64
    cgroup = tmp_path / "cgroup"
    cgroup.write_text(f"0::/system.slice/docker-{cid}.scope\n12:cpu:/docker/{cid}\n")
    assert resource.container_id([str(cgroup)]) == cid
    cgroup.write_text("0::/user.slice\n")
    assert resource.container_id([str(cgroup)]) is None


# ----------------------------------------------------------------- diagnostics and distro

def test_export_errors_are_rate_limited() -> None:
    now = [0.0]
    limiter = diagnostics.RateLimitFilter(60, clock=lambda: now[0])

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("opentelemetry.exporter.x", logging.ERROR, "f", 1, msg, None, None)

    assert limiter.filter(record("down"))
    assert not any(limiter.filter(record("down")) for _ in range(50))
    now[0] = 61
    later = record("still down")
    assert limiter.filter(later)
    assert "50 similar message(s) suppressed" in later.getMessage()
    assert limiter.filter(logging.LogRecord("x", logging.INFO, "f", 1, "info", None, None))


@pytest.mark.parametrize("url,excluded", [
    ("http://h/health", True), ("http://h/health/ready", True), ("http://h/metrics?x=1", True),
    ("http://h/healthy", False), ("http://h/items", False)])
def test_default_excluded_urls(url: str, excluded: bool) -> None:
    from opentelemetry.util.http import parse_excluded_urls

    pattern = distro.excluded_urls_pattern(load({}).excluded_urls)
    assert parse_excluded_urls(pattern).url_disabled(url) is excluded


def test_fastapi_gets_no_receive_send_subspans_unless_asked() -> None:
    assert distro.instrumentor_options("fastapi", load({}))["exclude_spans"] == ["receive", "send"]
    with_subspans = load({"OTEL_DISTRO_ASGI_SUBSPANS": "true"})
    assert "exclude_spans" not in distro.instrumentor_options("fastapi", with_subspans)
