"""The Collector's `redaction` rules catch the secret kinds the Python rules catch, tested with the same corpus.

The rules are read from collector/redaction-processor.yaml and applied as the processor applies them
(processor.go, contrib v0.159: a value whose key matches a blocked key pattern is masked whole; else
each blocked value regex in turn replaces its matches with `****`). Python's `re` runs them here in
ASCII mode; where Go is installed the same rules also run through Go's own RE2 `regexp`; where the stack
build has left a Collector binary, the corpus goes through a real Collector with these rules.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from otel_distro.redaction import Redactor
from tests.conftest import ROOT, free_port
from tests.otelcol_process import collector_binary, running_collector
from tests.otlp_test_receiver import OtlpTestReceiver
from tests.secret_cases import KINDS, SECRET_KEYS, Case, embedded

RULES_FILE = ROOT / "collector" / "redaction-processor.yaml"
COLLECTOR_CONFIG = ROOT / "collector" / "otelcol-config.yaml"
MASK = "****"
# What RE2 (Go's regexp) cannot compile: look-around, back-references, atomic and possessive groups.
_NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]|\(\?>|[*+?}]\+")

# Ordinary values that must reach the backends unchanged.
BENIGN_VALUES = [
    "GET /items/:itemId", "GET /items/{item_id}", "/shop/items/2", "Python-urllib/3.11",
    "1d0fa2fa-f4ac-4f4e-877e-ef0d551ce155", "2026-11-30T15:00:00.123Z", "127.0.0.1:8000",
    "https://api.example.com/v1/items?page=2&sort=asc", "chat gpt-4o-mini", "basic authentication is on",
    "1796051283671", "input_tokens=5", "gen_ai.token.type: output", "order created", "listing 2 items",
    "http://localhost:4318/v1/traces", "payment backend unavailable", "key_count: 3",
]
BENIGN_KEYS = [
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.token.type", "http.route",
    "http.request.method", "url.path", "user_agent.original", "service.name", "service.instance.id",
    "telemetry.sdk.version", "process.command_args", "itemId", "error.type", "exception.message",
]


def _processor(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())["processors"]["redaction"]


RULES = _processor(RULES_FILE)
KEY_PATTERNS = [re.compile(p, re.ASCII) for p in RULES["blocked_key_patterns"]]
VALUE_PATTERNS = [re.compile(p, re.ASCII) for p in RULES["blocked_values"]]


def collector_mask(key: str | None, value: str) -> str:
    """What the processor makes of one attribute (or log body) value."""
    if key is not None and any(p.search(key) for p in KEY_PATTERNS):
        return MASK
    for pattern in VALUE_PATTERNS:
        value = pattern.sub(MASK, value)
    return value


def leaked(case: Case, out: str) -> list[str]:
    return [needle for needle in case.needles if needle in out]


def test_the_collector_config_carries_these_rules() -> None:
    assert _processor(COLLECTOR_CONFIG) == RULES


def test_every_pipeline_of_the_collector_config_masks() -> None:
    pipelines = yaml.safe_load(COLLECTOR_CONFIG.read_text())["service"]["pipelines"]
    assert {name for name, pipeline in pipelines.items() if "redaction" in pipeline["processors"]} \
        == {"traces", "metrics", "logs"}


def test_the_rules_are_re2() -> None:
    for pattern in [*RULES["blocked_key_patterns"], *RULES["blocked_values"]]:
        assert not _NOT_RE2.search(pattern), pattern


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_kind_of_secret_in_text_is_masked(kind: str, data: st.DataObject) -> None:
    case, text = data.draw(embedded(KINDS[kind]))
    out = collector_mask("message", text)
    assert not leaked(case, out), f"{kind}: {text!r} -> {out!r}"


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_every_secret_key_masks_its_whole_value(key: str) -> None:
    assert Redactor().is_secret_key(key)  # the Python rules agree it is one
    assert collector_mask(key, "plain value 42") == MASK


@settings(max_examples=300, deadline=None)
@given(words=st.lists(st.sampled_from(["db", "user", "password", "token", "tokens", "api", "key", "session",
                                       "id", "secret", "client", "input", "gen_ai", "usage", "type", "value",
                                       "cookie", "auth", "authorization", "name", "count", "pwd", "pass",
                                       "bypass", "compass", "passphrase"]), min_size=1, max_size=4),
       separator=st.sampled_from([".", "_", "-"]))
def test_a_key_the_python_rules_call_secret_is_masked_by_the_collector(words: list[str], separator: str) -> None:
    key = separator.join(words)
    if Redactor().is_secret_key(key):
        assert collector_mask(key, "plain value 42") == MASK, key


@pytest.mark.parametrize("key", BENIGN_KEYS)
def test_ordinary_keys_are_kept(key: str) -> None:
    assert collector_mask(key, "plain value") == "plain value"


@pytest.mark.parametrize("value", BENIGN_VALUES)
def test_ordinary_values_are_kept(value: str) -> None:
    assert collector_mask("message", value) == value


_GO_PROGRAM = """package main

// Applies the redaction processor's masking (contrib processor/redactionprocessor, processAttrs)
// with Go's regexp, to the JSON items on stdin.
import (
	"encoding/json"
	"os"
	"regexp"
)

type input struct {
	KeyPatterns   []string `json:"key_patterns"`
	ValuePatterns []string `json:"value_patterns"`
	Items         [][2]string `json:"items"`
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		panic(err)
	}
	keys := compile(in.KeyPatterns)
	values := compile(in.ValuePatterns)
	out := make([]string, 0, len(in.Items))
	for _, item := range in.Items {
		out = append(out, mask(keys, values, item[0], item[1]))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		panic(err)
	}
}

func compile(patterns []string) []*regexp.Regexp {
	compiled := make([]*regexp.Regexp, 0, len(patterns))
	for _, p := range patterns {
		compiled = append(compiled, regexp.MustCompile(p))
	}
	return compiled
}

func mask(keys, values []*regexp.Regexp, key, value string) string {
	for _, re := range keys {
		if re.MatchString(key) {
			return regexp.MustCompile(".*").ReplaceAllString(value, "****")
		}
	}
	for _, re := range values {
		if re.MatchString(value) {
			value = re.ReplaceAllString(value, "****")
		}
	}
	return value
}
"""


def _run_go(tmp_path: Path, items: Iterable[tuple[str, str]]) -> list[str]:
    (tmp_path / "main.go").write_text(_GO_PROGRAM)
    (tmp_path / "go.mod").write_text("module redactioncheck\n\ngo 1.22\n")
    payload = {"key_patterns": RULES["blocked_key_patterns"], "value_patterns": RULES["blocked_values"],
               "items": [list(item) for item in items]}
    env = {"GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "HOME": str(Path.home()),
           "PATH": "/usr/local/go/bin:/usr/bin:/bin", "GOCACHE": str(Path.home() / ".cache" / "go-build")}
    done = subprocess.run(["go", "run", "."], cwd=tmp_path, input=json.dumps(payload), capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.skipif(shutil.which("go") is None, reason="Go is not installed: the RE2 run needs `go`")
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate])
@given(data=st.data())
def test_go_regexp_masks_the_same_corpus(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    cases = [data.draw(embedded(KINDS[kind])) for kind in sorted(KINDS)]  # one of each kind per go run
    keyed = [(key, "plain value 42") for key in SECRET_KEYS]
    benign = [("message", value) for value in BENIGN_VALUES] + [(key, "plain value") for key in BENIGN_KEYS]
    items = [("message", text) for _, text in cases] + keyed + benign
    out = _run_go(tmp_path_factory.mktemp("go"), items)
    for (case, text), masked in zip(cases, out, strict=False):  # out also holds the keyed and benign items
        assert not leaked(case, masked), f"{case.kind}: {text!r} -> {masked!r}"
    assert out[len(cases):len(cases) + len(keyed)] == [MASK] * len(keyed)
    assert out[len(cases) + len(keyed):] == [value for _, value in benign]
    # Python's re (ASCII) and Go's RE2 agree on every item.
    assert out == [collector_mask(key, value) for key, value in items]


# ---------------------------------------------------------------- through a real Collector

def _text(value: str) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    return AnyValue(string_value=value)


def _export_requests(items: list[tuple[str, str, str]]) -> tuple[bytes, bytes]:
    """OTLP requests: a span per item (attribute `message` = the text, and a keyed attribute) and a log
    record per item (the text as body)."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    traces, logs = ExportTraceServiceRequest(), ExportLogsServiceRequest()
    spans = traces.resource_spans.add().scope_spans.add().spans
    records = logs.resource_logs.add().scope_logs.add().log_records
    for n, (text, key, keyed_value) in enumerate(items):
        spans.add(name=f"case-{n}", trace_id=bytes([n + 1]) * 16, span_id=bytes([n + 1]) * 8,
                  start_time_unix_nano=1, end_time_unix_nano=2,
                  attributes=[KeyValue(key="message", value=_text(text)), KeyValue(key=key, value=_text(keyed_value))])
        records.add(time_unix_nano=1, body=_text(text), attributes=[KeyValue(key="case", value=_text(str(n)))])
    return traces.SerializeToString(), logs.SerializeToString()


# Labels the dashboards and rules group by: they must come out of the Collector as they went in.
ORDINARY_LABELS = {"http.route": "/items/:itemId", "http.request.method": "GET", "http.response.status_code": 200,
                   "gen_ai.request.model": "gpt-4o-mini", "gen_ai.token.type": "input"}


def _metrics_request(items: list[tuple[str, str, str]]) -> bytes:
    """A counter with a point per item: the text, a keyed value, and the labels dashboards group by."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add(name="case.requests")
    metric.sum.aggregation_temporality, metric.sum.is_monotonic = 2, True  # cumulative
    ordinary = [KeyValue(key=k, value=AnyValue(int_value=v) if isinstance(v, int) else _text(v))
                for k, v in ORDINARY_LABELS.items()]
    for n, (text, key, keyed_value) in enumerate(items):
        metric.sum.data_points.add(time_unix_nano=2, as_int=1, attributes=[
            KeyValue(key="case", value=_text(str(n))), KeyValue(key="message", value=_text(text)),
            KeyValue(key=key, value=_text(keyed_value)), *ordinary])
    return request.SerializeToString()


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.status


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, OtlpTestReceiver]]:
    """A real Collector: OTLP/HTTP in -> these redaction rules -> OTLP/HTTP out to the test receiver."""
    binary = collector_binary()
    if binary is None:
        pytest.skip("the Collector is not built (`otel-distro stack build`; .ci/run builds it where Go is installed)")
    with OtlpTestReceiver() as receiver:
        endpoint = f"http://127.0.0.1:{free_port()}"
        pipeline = {"receivers": ["otlp"], "processors": ["redaction"], "exporters": ["otlp_http"]}
        config = {
            "receivers": {"otlp": {"protocols": {"http": {"endpoint": endpoint.removeprefix("http://")}}}},
            "processors": {"redaction": RULES},
            "exporters": {"otlp_http": {"endpoint": receiver.endpoint, "retry_on_failure": {"enabled": False}}},
            "service": {"pipelines": {"traces": pipeline, "metrics": pipeline, "logs": pipeline}},
        }
        with running_collector(binary, config, tmp_path_factory.mktemp("otelcol"), endpoint):
            yield endpoint, receiver


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate])
@given(data=st.data())
def test_a_real_collector_masks_the_corpus_in_spans_and_logs(collector: tuple[str, OtlpTestReceiver],
                                                            data: st.DataObject) -> None:
    endpoint, receiver = collector
    cases = [data.draw(embedded(KINDS[kind])) for kind in sorted(KINDS)]
    keys = [data.draw(st.sampled_from(SECRET_KEYS)) for _ in cases]
    items = [(text, key, f"v4lue-{n}-Q") for n, ((_, text), key) in enumerate(zip(cases, keys, strict=True))]
    seen_spans, seen_logs = len(receiver.spans()), len(receiver.logs())
    traces, logs = _export_requests(items)
    assert _post(endpoint + "/v1/traces", traces) == 200 and _post(endpoint + "/v1/logs", logs) == 200
    spans = receiver.wait_for(lambda: len(receiver.spans()) >= seen_spans + len(items)
                              and receiver.spans()[seen_spans:], what="the spans through the Collector")
    records = receiver.wait_for(lambda: len(receiver.logs()) >= seen_logs + len(items)
                                and receiver.logs()[seen_logs:], what="the log records through the Collector")
    for span in spans:
        n = int(span.name.removeprefix("case-"))
        case, text = cases[n]
        assert not leaked(case, str(span.attributes["message"])), f"{case.kind}: {text!r} -> {span.attributes}"
        assert span.attributes[keys[n]] == MASK
        assert span.attributes["message"] == collector_mask("message", text)  # the processor, as modelled here
    for record in records:
        case, text = cases[int(record.attributes["case"])]
        assert not leaked(case, str(record.body)), f"{case.kind}: {text!r} -> {record.body!r}"


@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate])
@given(data=st.data())
def test_a_real_collector_masks_metric_point_attributes_and_keeps_the_labels_dashboards_read(
        collector: tuple[str, OtlpTestReceiver], data: st.DataObject) -> None:
    endpoint, receiver = collector
    cases = [data.draw(embedded(KINDS[kind])) for kind in sorted(KINDS)]
    keys = [data.draw(st.sampled_from(SECRET_KEYS)) for _ in cases]
    items = [(text, key, f"v4lue-{n}-Q") for n, ((_, text), key) in enumerate(zip(cases, keys, strict=True))]
    seen = len(receiver.metric("case.requests"))
    assert _post(endpoint + "/v1/metrics", _metrics_request(items)) == 200
    (metric,) = receiver.wait_for(lambda: receiver.metric("case.requests")[seen:],
                                  what="the metric through the Collector")
    assert len(metric.points) == len(items)
    for point in metric.points:
        n = int(point.attributes["case"])
        case, text = cases[n]
        assert not leaked(case, str(point.attributes["message"])), f"{case.kind}: {text!r} -> {point.attributes}"
        assert point.attributes[keys[n]] == MASK
        assert point.attributes["message"] == collector_mask("message", text)
        assert {k: point.attributes[k] for k in ORDINARY_LABELS} == ORDINARY_LABELS  # the int stays an int
