"""Business meters: declared KPIs, attribute allow-lists, bounded values, the YAML file."""

from __future__ import annotations

import logging
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_distro import business
from otel_distro._internal_errors import internal_error_counts
from otel_distro.business import MetricDeclarationError, Registry
from tests.conftest import BIN, ROOT, free_port, http_get, telemetry_env

EXAMPLE = ROOT / "examples" / "business_metrics.yaml"


class Rig:
    def __init__(self, max_values: int = 100) -> None:
        self.reader = InMemoryMetricReader()
        self.registry = Registry(MeterProvider(metric_readers=[self.reader]), max_values=max_values)

    def metric(self, name: str) -> Any:
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == name:
                        return m
        return None

    def points(self, name: str) -> dict[tuple, Any]:
        metric = self.metric(name)
        out = {}
        for p in metric.data.data_points if metric else []:
            key = tuple(sorted(p.attributes.items()))
            out[key] = p.value if hasattr(p, "value") else (p.sum, p.count)
        return out


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_counter_adds_per_attribute_set(rig: Rig) -> None:
    campaigns = rig.registry.counter("campaigns.created", "{campaign}", "Campaigns", attributes=["platform"])
    campaigns.add(1, platform="meta")
    campaigns.add(2, platform="meta")
    campaigns.add(1, {"platform": "google"})
    campaigns.add(1)
    assert rig.points("campaigns.created") == {
        (("platform", "meta"),): 3, (("platform", "google"),): 1, (): 1}
    metric = rig.metric("campaigns.created")
    assert metric.unit == "{campaign}" and metric.data.is_monotonic


def test_undeclared_attributes_are_dropped_with_one_warning_per_key(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    signups = rig.registry.counter("signups", "{signup}", attributes=["plan"])
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        for _ in range(3):
            signups.add(1, plan="pro", user_id="u-1", email="a@b.c")
    assert rig.points("signups") == {(("plan", "pro"),): 3}
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert any("'user_id' is not declared" in m for m in messages)


def test_attribute_values_are_bounded_with_an_other_overflow(caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(max_values=3)
    ads = rig.registry.counter("ads.published", "{ad}", attributes=["customer"])
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        for n in range(10):
            ads.add(1, customer=f"c{n}")
        ads.add(5, customer="c1")
    points = rig.points("ads.published")
    assert points == {(("customer", "c0"),): 1, (("customer", "c1"),): 6, (("customer", "c2"),): 1,
                      (("customer", "other"),): 7}
    assert sum("distinct values" in r.getMessage() for r in caplog.records) == 1


def test_per_metric_value_bound(rig: Rig) -> None:
    sized = rig.registry.counter("videos.generated", attributes=["template"], max_values=1)
    sized.add(1, template="a")
    sized.add(1, template="b")
    assert rig.points("videos.generated") == {(("template", "a"),): 1, (("template", "other"),): 1}


def test_up_down_counter_gauge_and_histogram(rig: Rig) -> None:
    active = rig.registry.up_down_counter("customers.active", "{customer}", attributes=["plan"])
    active.add(5, plan="pro")
    active.add(-2, plan="pro")
    roas = rig.registry.gauge("campaign.roas", "1", attributes=["platform"])
    roas.set(3.5, platform="meta")
    roas.set(2.25, platform="meta")
    revenue = rig.registry.histogram("revenue", "{USD}", attributes=["platform"], buckets=[10, 100, 1000])
    revenue.record(50, platform="meta")
    revenue.record(500, platform="meta")
    assert rig.points("customers.active") == {(("plan", "pro"),): 3}
    assert rig.points("campaign.roas") == {(("platform", "meta"),): 2.25}
    assert rig.points("revenue") == {(("platform", "meta"),): (550, 2)}
    assert tuple(rig.metric("revenue").data.data_points[0].explicit_bounds) == (10, 100, 1000)
    assert not rig.metric("customers.active").data.is_monotonic


def test_negative_counter_amount_is_ignored_with_a_warning(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    orders = rig.registry.counter("orders")
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        orders.add(-1)
        orders.add(-1)
        orders.add(2)
    assert rig.points("orders") == {(): 2}
    assert len(caplog.records) == 1 and "up_down_counter" in caplog.records[0].getMessage()


@pytest.mark.parametrize("name", ["", "1st", "orders created", "orders$", "ü", "x" * 256, None])
def test_names_follow_the_instrument_name_rules(rig: Rig, name: Any) -> None:
    with pytest.raises(MetricDeclarationError, match="must start with a letter"):
        rig.registry.counter(name)


@pytest.mark.parametrize("name", ["a", "campaigns.created", "shop/orders-v2_total", "A" * 255])
def test_valid_names(rig: Rig, name: str) -> None:
    assert rig.registry.counter(name).name == name


def test_bad_attribute_keys_and_buckets_are_declaration_errors(rig: Rig) -> None:
    with pytest.raises(MetricDeclarationError, match="attribute key"):
        rig.registry.counter("c", attributes=["good", "bad key"])
    with pytest.raises(MetricDeclarationError, match="increasing"):
        rig.registry.histogram("h", buckets=[10, 5])


def test_same_name_returns_the_same_instrument_and_other_kinds_are_refused(rig: Rig) -> None:
    first = rig.registry.counter("campaigns.created", attributes=["platform"])
    assert rig.registry.counter("campaigns.created") is first
    assert rig.registry.get("campaigns.created") is first
    with pytest.raises(MetricDeclarationError, match="already declared as a counter"):
        rig.registry.gauge("campaigns.created")
    with pytest.raises(KeyError, match=r"declared: campaigns\.created"):
        rig.registry.get("nope")


def test_a_value_that_is_not_a_number_is_ignored_with_one_line(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    counter = rig.registry.counter("c", attributes=["k"])
    gauge = rig.registry.gauge("g", attributes=["k"])
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        counter.add("one", k="v")  # type: ignore[arg-type]
        counter.add("one", k="v")  # type: ignore[arg-type]
        gauge.set(None, k="v")  # type: ignore[arg-type]
        counter.add(Decimal("2.5"), k=["unhashable"])  # type: ignore[arg-type]
    said = [r.getMessage() for r in caplog.records]
    assert sum("c: value 'one' is not a number" in line for line in said) == 1
    assert sum("g: value None is not a number" in line for line in said) == 1
    assert rig.points("c") == {(("k", "['unhashable']"),): 2.5}
    assert rig.points("g") == {}


def test_an_internal_failure_while_recording_is_reported_once_and_swallowed(
        rig: Rig, caplog: pytest.LogCaptureFixture, production_errors: None) -> None:
    histogram = rig.registry.histogram("h", attributes=["k"])
    histogram._sdk = None  # the SDK instrument gone: the distro's own failure, not the caller's
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        histogram.record(1.0, k="v")
        histogram.record(2.0, k="v")
    assert sum("business metric h: recording failed" in r.getMessage() for r in caplog.records) == 1
    assert internal_error_counts()["business.h"] == 2


# ------------------------------------------------------------------ the file

def test_the_example_file_declares_the_seeds_kpis(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        names = rig.registry.load_file(EXAMPLE)
    assert caplog.records == []
    for kpi in ("campaigns.created", "ads.published", "videos.generated", "revenue", "campaign.roas",
                "signups", "customers.active", "prediction.accuracy", "shop.orders.created", "shop.cart.value"):
        assert kpi in names
    rig.registry.get("campaigns.created").add(1, platform="meta")
    assert rig.points("campaigns.created") == {(("platform", "meta"),): 1}
    assert rig.registry.counter("shop.orders.created") is rig.registry.get("shop.orders.created")


def test_malformed_file_entries_give_one_line_each(rig: Rig, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "kpis.yaml"
    path.write_text("""
metrics:
  - {name: good.one, kind: counter, attributes: [plan]}
  - {name: "bad name", kind: counter}
  - {name: wrong.kind, kind: summary}
  - {name: bad.buckets, kind: histogram, buckets: [3, 1]}
  - {name: typo, kind: counter, atributes: [x]}
  - {name: gauge.buckets, kind: gauge, buckets: [1]}
  - {name: good.one, kind: counter}
  - {name: good.two, kind: gauge, unit: "1"}
""")
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        names = rig.registry.load_file(path)
    assert names == ["good.one", "good.two"]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 6
    assert all(f"OTEL_DISTRO_BUSINESS_METRICS_FILE={path}" in line and "entry skipped" in line for line in lines)
    assert "entry 2 (bad name)" in lines[0] and "entry 7 (good.one): declared twice" in lines[5]


@pytest.mark.parametrize(("text", "expected"), [("metrics: [ {name: a\n", "not valid YAML"),
                                                ("metrics: 3\n", "expected a 'metrics' list")])
def test_unusable_file_gives_one_line(rig: Rig, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                      text: str, expected: str) -> None:
    path = tmp_path / "kpis.yaml"
    path.write_text(text)
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        assert rig.registry.load_file(path) == []
    assert len(caplog.records) == 1 and expected in caplog.records[0].getMessage()


def test_module_functions_use_the_global_registry() -> None:
    made = business.counter("unit.test.global", attributes=["x"])
    assert business.get("unit.test.global") is made


# ------------------------------------------------------------------ end to end

@pytest.mark.integration
def test_shop_kpis_reach_the_collector(receiver: Any, start_service: Any) -> None:
    port = free_port()
    env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="shop",
                        OTEL_DISTRO_BUSINESS_METRICS_FILE=str(EXAMPLE))
    service = start_service([str(BIN / "opentelemetry-instrument"), sys.executable, "-m", "uvicorn",
                             "examples.fastapi_app.main:app", "--host", "127.0.0.1", "--port", str(port)], env)
    base = f"http://127.0.0.1:{port}"
    service.wait_http(base + "/health")
    assert http_get(base + "/orders?item_id=1&quantity=2", method="POST") == 200
    assert http_get(base + "/orders?item_id=2&quantity=1&channel=mobile", method="POST") == 200
    assert http_get(base + "/orders?item_id=2&quantity=1&channel=mobile", method="POST") == 200

    def totals() -> dict[str, float]:
        found = receiver.metric("shop.orders.created")
        return {p.attributes["channel"]: p.value for p in found[-1].points} if found else {}

    receiver.wait_for(lambda: totals() == {"web": 1, "mobile": 2}, what="order counts by channel")
    (metric,) = receiver.metric("shop.orders.created")[-1:]
    assert metric.kind == "sum" and metric.unit == "{order}"
    cart = receiver.wait_for(lambda: receiver.metric("shop.cart.value"), what="cart histogram")[-1]
    by_channel = {p.attributes["channel"]: p for p in cart.points}
    assert by_channel["web"].sum == 49.0 and by_channel["mobile"].count == 2
    assert by_channel["web"].bounds == [5, 10, 25, 50, 100, 250]
    assert "entry skipped" not in service.output()  # the example file is clean
