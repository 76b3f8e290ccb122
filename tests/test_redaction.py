"""The redaction rules in process: every kind of secret, ordinary values untouched, the exporter wrappers."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_distro import logs, metrics, redaction, resource, traces
from otel_distro.redaction import REDACTED, Redactor
from otel_distro.settings import load
from tests.secret_cases import KINDS, SECRET_KEYS, embedded

FAST = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
RULES = Redactor()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_of_secret_is_removed_from_text(kind: str) -> None:
    @FAST
    @given(embedded(KINDS[kind]))
    def check(drawn) -> None:
        case, text = drawn
        cleaned = RULES.text(text)
        for needle in case.needles:
            assert needle not in cleaned, (text, cleaned)

    check()


@FAST
@given(embedded())
def test_secrets_are_removed_from_log_bodies_maps_and_lists(drawn) -> None:
    case, text = drawn
    cleaned = RULES.any_value({"outer": [text, {"inner": text}], "n": 3})
    flat = repr(cleaned)
    for needle in case.needles:
        assert needle not in flat


@pytest.mark.parametrize("text", ['secrets="db.password": "DrsRW7Z4J5H!" "', "token: password: 0A00000000 x",
                                  "secret=X-Api-Key: 0A00000000", "x secret: 'api_key': '0A00000000'",
                                  "password:  Authorization: Bearer 0A00000000 ", "api_key: Bearer 0A00000000",
                                  "password: -----BEGIN PRIVATE KEY-----\nMIIB0A00000000\n-----END PRIVATE KEY-----",
                                  'password:  ""password": "0A00000000" ', "Bearer  AWS_SECRET_ACCESS_KEY=0A00000000 "])
def test_a_secret_keys_value_never_hides_another_secret(text: str) -> None:
    cleaned = RULES.text(text)
    assert "DrsRW7Z4J5H!" not in cleaned and "0A00000000" not in cleaned, cleaned


@FAST
@given(st.sampled_from(SECRET_KEYS), st.sampled_from(["=", ": ", " = ", ":", "\t:\t"]), KINDS["key"])
def test_pairs_after_a_secret_key_are_still_judged(outer: str, op: str, case) -> None:
    text = outer + op + case.text
    cleaned = RULES.text(text)
    for needle in case.needles:
        assert needle not in cleaned, (text, cleaned)


@pytest.mark.parametrize("text, needle", [
    ("user wrote: 000000000000000000@example.com", "000000000000000000@"),  # a digit run, no card
    ("Bearer jane.doe@example.com", "jane.doe@"),  # "Bearer jane.doe" is too short for a token
    ("basic https://hooks.slack.com/services/T0AB/B0CD/Xy12Zw34", "Xy12Zw34"),
])
def test_a_match_a_rule_declines_leaves_its_text_to_the_other_rules(text: str, needle: str) -> None:
    assert needle not in RULES.text(text)


@FAST
@given(st.sampled_from(["Bearer ", "basic ", "1234567890123 ", "4111111111111112 ",  # declined matches
                        "password: ", "token=", '"secret": ', "Authorization: ", "?api_key="]),  # secret keys
       embedded())
def test_secrets_after_a_declined_match_or_a_secret_key_are_still_found(prefix: str, drawn) -> None:
    case, text = drawn
    for written in (prefix + case.text, prefix + text):
        cleaned = RULES.text(written)
        for needle in case.needles:
            assert needle not in cleaned, (written, cleaned)


# ---- by key

@pytest.mark.parametrize("key", ["password", "PASSWORD", "db.password", "user-passwd", "api_key", "apiKey",
                                 "X-Api-Key", "authorization", "http.request.header.authorization",
                                 "Set-Cookie", "cookie", "session", "session.id", "sessionid",
                                 "private_key", "privateKey", "client_secret", "clientSecret",
                                 "access_token", "csrftoken", "aws.secret_access_key"])
def test_secret_keys_lose_their_values(key: str) -> None:
    assert RULES.value(key, "hunter2") == REDACTED
    assert RULES.value(key, 1234) == REDACTED
    assert RULES.value(key, ["a", "b"]) == [REDACTED, REDACTED]


@pytest.mark.parametrize("key", ["gen_ai.usage.input_tokens", "gen_ai.token.type", "token_count", "gen_ai.usage.output_tokens", "max_tokens",
                                 "http.route", "user.id", "tokenizer", "sessions_active", "cache.key",
                                 "keyboard", "http.request.method", "secretary_name"])
def test_ordinary_keys_keep_their_values(key: str) -> None:
    assert RULES.value(key, "kept") == "kept"
    assert RULES.value(key, 42) == 42


def test_extra_keys_from_settings() -> None:
    extra = Redactor(extra_keys=("ssn", "Customer-PIN"))
    assert extra.value("user.ssn", "078-05-1120") == REDACTED
    assert extra.value("customer_pin", "1234") == REDACTED
    assert extra.text("lookup ssn=078-05-1120 done") == f"lookup ssn={REDACTED} done"
    assert RULES.value("user.ssn", "078-05-1120") == "078-05-1120"


def test_extra_patterns_from_settings() -> None:
    extra = Redactor(extra_patterns=(r"ORD-\d{6}", r"(?i)internal-[a-z]+"))
    assert extra.text("order ORD-123456 for Internal-Alpha") == f"order {REDACTED} for {REDACTED}"


# ---- values

def test_email_modes() -> None:
    text = "from Jane.Doe@example.com ok"
    assert RULES.text(text) == "from J***@example.com ok"
    hashed = Redactor(emails="hash").text(text)
    assert hashed.startswith("from [email:") and "Jane.Doe" not in hashed
    assert hashed == Redactor(emails="hash").text("from jane.doe@EXAMPLE.com ok")  # one person, one hash
    assert Redactor(emails="keep").text(text) == text


@pytest.mark.parametrize("emails", ["mask", "hash", "keep"])
def test_an_address_that_is_a_secret_keys_value_is_redacted_whole(emails: str) -> None:
    assert Redactor(emails=emails).text("password=jane@example.com") == "password=[REDACTED]"


def test_card_numbers_need_luhn_and_a_network_digit() -> None:
    assert RULES.text("card 4111 1111 1111 1111 ok") == f"card {REDACTED} ok"
    assert RULES.text("card 4111-1111-1111-1112 ok") == "card 4111-1111-1111-1112 ok"  # Luhn fails
    assert RULES.text("ts 1732012345678 and 1732012345678901234") == "ts 1732012345678 and 1732012345678901234"
    assert RULES.any_value(4111111111111111) == REDACTED
    assert RULES.any_value(1732012345678901234) == 1732012345678901234


def test_text_without_a_secret_is_the_same_object() -> None:
    text = "listing 3 items for tenant acme"
    assert RULES.text(text) is text


def _ordinary_values() -> list[str]:
    ids = [uuid.uuid4() for _ in range(50)]
    return [
        *(str(u) for u in ids), *(u.hex for u in ids),  # UUIDs; 32 hex digits like trace ids
        *(f"{u.int & (2**64 - 1):016x}" for u in ids),  # span ids
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # traceparent
        "2026-11-05T10:00:00.123456Z", "2026-11-05 10:00:00,123", "Thu, 05 Nov 2026 10:00:00 GMT",
        "1732012345678", "1732012345678901234", "1732012345.678",
        "$1,299.99", "EUR 24.50", "price=31.00", "total: 93.00", "-0.75", "3.14159", "1e-9", "65536",
        "GET /items/{item_id}", "POST /orders", "http.server.request.duration", "gen_ai.usage.input_tokens=1200",
        "order created for 3 items", "The token count was 512 and the session lasted 4 minutes.",
        "user 42 logged in from 10.0.0.5:8443", "retrying in 2.5s (attempt 3 of 5)",
        "Basic authentication is disabled", "bearer of bad news", "version 1.45.2 of opentelemetry-sdk",
        "commit 874ff29c3b2a9f1d5e8f7a6b4c3d2e1f0a9b8c7d", "sha256:9f86d081884c7d659a2feaa0c55ad015",
        "phone +44 20 7946 0958", "isbn 978-3-16-148410-0", "room 4-12", "ticket ABC-1234",
        "https://example.com/items?page=2&sort=price", "/v1/traces", "host=db.internal port=5432",
        "risk-free", "sk-learn", "task-runner", "a=b", "key: value", "cache.key=items:42",
    ]


def test_ordinary_values_pass_unchanged() -> None:
    changed = [(v, RULES.text(v)) for v in _ordinary_values() if RULES.text(v) != v]
    assert changed == []


@FAST
# Numbers of 13+ digits are left out on purpose: a Luhn-valid one is
# indistinguishable from a card number and is masked by design (a documented
# false positive), so generating them would make this test fail by chance.
@given(st.one_of(st.uuids().map(str), st.uuids().map(lambda u: u.hex),
                 st.integers(0, 2**64 - 1).map(lambda i: f"{i:016x}").filter(lambda h: not h.isdigit()),
                 st.datetimes().map(lambda d: d.isoformat() + "Z"),
                 st.decimals(min_value=0, max_value=10**7, places=2, allow_nan=False).map(str),
                 st.integers(-10**12 + 1, 10**12 - 1).map(str),
                 st.floats(min_value=-1e12, max_value=1e12, allow_nan=False).map(repr),
                 st.text(" abcdefghijklmnopqrstuvwxyz.,!?", max_size=80)))
def test_generated_ordinary_values_pass_unchanged(value: str) -> None:
    assert RULES.text(value) == value


# ---- the exporters' copies

def _settings(**env: str):
    return load({"OTEL_SERVICE_NAME": "unit", **env})


def test_span_exporter_redacts_copies_in_the_export_path() -> None:
    chosen = _settings()
    memory = InMemorySpanExporter()
    provider = traces.build(chosen, resource.build(chosen), span_exporters=[memory])
    tracer = provider.get_tracer("lib.jane.doe@example.com")
    with tracer.start_as_current_span("GET https://u:pw123@api.example.com/x?token=abc123") as span:
        span.set_attribute("http.request.header.authorization", "Bearer abcdefghijklmnop123")
        span.set_attribute("user.email", "jane@example.com")
        span.set_attribute("gen_ai.usage.input_tokens", 120)
        span.set_attribute("Bearer abcdefghijklmnop456", "v")  # a secret as a key
        span.add_event("note", {"detail": "card 4111111111111111"})
        span.add_event("login password=hunter2", {"token=Hunter2x": 1})
        try:
            raise ValueError("bad key sk-ant-api03-" + "x1" * 30)
        except ValueError as err:
            span.record_exception(err)
        original = span
    provider.force_flush()
    (exported,) = memory.get_finished_spans()
    assert exported.name == f"GET https://u:{REDACTED}@api.example.com/x?token={REDACTED}"
    assert exported.attributes["http.request.header.authorization"] == REDACTED
    assert exported.attributes["user.email"] == "j***@example.com"
    assert exported.attributes["gen_ai.usage.input_tokens"] == 120
    assert exported.events[0].attributes["detail"] == f"card {REDACTED}"
    assert exported.attributes["Bearer [REDACTED]"] == "v"
    assert exported.events[1].name == f"login password={REDACTED}"
    assert dict(exported.events[1].attributes) == {f"token={REDACTED}": 1}
    assert "jane.doe" not in exported.instrumentation_scope.name
    exception = exported.events[2].attributes
    assert "x1x1" not in exception["exception.message"] and "x1x1" not in exception["exception.stacktrace"]
    # The span the application holds is not modified: only the exported copy is.
    assert original.attributes["user.email"] == "jane@example.com"
    provider.shutdown()


def test_redaction_off_exports_as_is() -> None:
    chosen = _settings(OTEL_DISTRO_REDACT="false")
    memory = InMemorySpanExporter()
    provider = traces.build(chosen, resource.build(chosen), span_exporters=[memory])
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.set_attribute("password", "hunter2")
    provider.force_flush()
    assert memory.get_finished_spans()[0].attributes["password"] == "hunter2"
    provider.shutdown()


@contextlib.contextmanager
def _bridged_logs() -> Iterator[InMemoryLogRecordExporter]:
    """The log bridge to an in-memory exporter behind the copy-based redaction; flushed on leaving."""
    chosen = _settings()
    memory = InMemoryLogRecordExporter()
    provider = logs.build(chosen, resource.build(chosen), log_exporters=[])
    provider.add_log_record_processor(SimpleLogRecordProcessor(
        redaction.wrap_log_exporter(memory, redaction.from_settings(chosen))))
    logs.remove_bridge()
    logs.install_bridge(provider, logging.INFO)
    try:
        yield memory
        logs.bridge().flush()
    finally:
        logs.remove_bridge()
        provider.shutdown()


def test_log_exporter_redacts_bodies_and_attributes() -> None:
    with _bridged_logs() as memory:
        log = logging.getLogger("app")
        log.warning("login for bob@example.com with password=hunter2",
                    extra={"api_key": "abc", "note": "AKIAIOSFODNN7EXAMPLE", "count": 3})
        try:
            raise RuntimeError("token ghp_" + "A1" * 18)
        except RuntimeError:
            log.exception("failed")
    records = [r.log_record for r in memory.get_finished_logs()]
    (login,) = [r for r in records if "login" in r.body]
    assert login.body == f"login for b***@example.com with password={REDACTED}"
    assert login.attributes["api_key"] == REDACTED
    assert login.attributes["note"] == REDACTED
    assert login.attributes["count"] == 3
    (failed,) = [r for r in records if r.body == "failed"]
    assert "A1A1" not in failed.attributes["exception.message"]
    assert "A1A1" not in failed.attributes["exception.stacktrace"]


def test_metric_point_attributes_are_redacted_by_key_and_value() -> None:
    chosen = _settings()
    reader = InMemoryMetricReader()
    redaction.redact_pull_reader(reader, redaction.from_settings(chosen))
    provider = metrics.build(chosen, resource.build(chosen), [reader])
    counter = provider.get_meter("m").create_counter("logins")
    counter.add(1, {"session_id": "s3cr3t", "user": "jane@example.com", "route": "/login"})
    data = reader.get_metrics_data()
    (point,) = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
    assert point.attributes == {"session_id": REDACTED, "user": "j***@example.com", "route": "/login"}
    provider.shutdown()


def test_a_failing_rule_drops_the_batch_and_says_so_once(caplog: pytest.LogCaptureFixture,
                                                        production_errors: None) -> None:
    class Broken(Redactor):
        def attributes(self, attributes):
            raise RuntimeError("boom")

    memory = InMemorySpanExporter()
    wrapped = redaction.wrap_span_exporter(memory, Broken())
    chosen = _settings()
    provider = traces.build(chosen, resource.build(chosen), span_exporters=[])
    provider.add_span_processor(SimpleSpanProcessor(wrapped))
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        for _ in range(3):
            with provider.get_tracer("t").start_as_current_span("s"):
                pass
    assert memory.get_finished_spans() == ()
    assert len([r for r in caplog.records if "redaction of spans failed" in r.getMessage()]) == 1
    provider.shutdown()


# ---- secrets that used to escape (issue 12)

@pytest.mark.parametrize(("text", "needles"), [
    ("Authorization: Token 0123456789abcdef0123456789abcdef", ["0123456789abcdef"]),
    ("authorization: token 9f86d081884c7d659a2feaa0c55ad015", ["9f86d081884c"]),
    ("password: correct horse battery staple", ["correct", "horse", "battery", "staple"]),
    ('{"password": "ab\\"cd-tail"}', ["ab", "cd-tail"]),
    ("{'password': 'ab\\'cd-tail', 'user': 'bob'}", ["cd-tail"]),
    ("pwd=Hunter2x ok", ["Hunter2x"]), ("db_pwd: Hunter2x", ["Hunter2x"]), ("pass=Hunter2x", ["Hunter2x"]),
    ("passphrase: Hunter2x", ["Hunter2x"]), ('"credentials": "Hunter2x"', ["Hunter2x"]),
    ("GET /cb?auth=Hunter2x&page=2", ["Hunter2x"]),
    ('{"password": "ab\\"cd', ["cd"]),  # cut short: no closing quote
])
def test_secrets_that_used_to_escape_are_masked(text: str, needles: list[str]) -> None:
    cleaned = RULES.text(text)
    assert REDACTED in cleaned
    for needle in needles:
        assert needle not in cleaned, cleaned


@pytest.mark.parametrize(("text", "kept"), [
    ("Authorization: Bearer abcdefghijklmnop123", "Authorization: Bearer [REDACTED]"),
    ("token: abc123, user: bob", "token: [REDACTED], user: bob"),
    ("password: a b c; user=bob", "password: [REDACTED]; user=bob"),
    ('{"password": "x\\"y", "user": "bob"}', '{"password": "[REDACTED]", "user": "bob"}'),
    ("password: hunter2\nnext line stays", "password: [REDACTED]\nnext line stays"),
    ("password=hunter2 user=bob", "password=[REDACTED] user=bob"),
])
def test_where_a_secret_keys_value_ends(text: str, kept: str) -> None:
    # After "key:" the value is the rest of the line, up to the next ", name:" pair; after
    # "key=" one word; a quoted value runs to its closing quote, escaped quotes included.
    assert RULES.text(text) == kept


def test_keys_and_names_with_secrets_in_them() -> None:
    assert RULES.key("Bearer abcdefghijklmnop123") == "Bearer [REDACTED]"
    assert RULES.key("login password=hunter2") == "login password=[REDACTED]"
    assert RULES.key("http.route") == "http.route"
    assert RULES.name("login password=hunter2") == "login password=[REDACTED]"
    assert RULES.name("app.jane.doe@example.com") == "a***@example.com"
    assert RULES.attributes({"Bearer abcdefghijklmnop123": "v", "password": "p"}) == {
        "Bearer [REDACTED]": "v", "password": REDACTED}
    assert RULES.any_value({"token=Abc123xyz": 1}) == {"token=[REDACTED]": 1}


def test_logger_names_event_names_and_extra_keys_are_redacted_on_the_copy_based_path() -> None:
    with _bridged_logs() as memory:
        logging.getLogger("app.jane.doe@example.com").warning(
            "signed in", extra={"event.name": "login password=hunter2", "Bearer abcdefghijklmnop123": "v"})
    (readable,) = [r for r in memory.get_finished_logs() if r.log_record.body == "signed in"]
    assert readable.log_record.event_name == f"login password={REDACTED}"
    assert "Bearer [REDACTED]" in readable.log_record.attributes
    assert "jane.doe" not in readable.instrumentation_scope.name
