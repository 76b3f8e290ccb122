"""OpAMP: a running service reports itself and takes live settings from the server, never slowed by it.

The service tests start tests/apps/config_app.py under opentelemetry-instrument with
OTEL_DISTRO_OPAMP_ENDPOINT pointing at the test OpAMP server (tests/opamp_test_server.py: real OpAMP protobuf
over HTTP) and its telemetry at the test OTLP receiver.
"""

from __future__ import annotations

import logging
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from otel_distro import remote, settings
from tests.conftest import BIN, http_get, telemetry_env
from tests.opamp_test_server import APPLIED, FAILED, OpampTestServer
from tests.test_config_file import start_config_app

# ---------------------------------------------------------------- validation, without a server


def test_only_live_settings_are_accepted_and_values_are_parsed_as_in_the_file() -> None:
    assert settings.live_values({"sampler_arg": "0.25", "log_export_level": "WARNING",
                                 "redact_keys": ["ssn", "iban"], "redact_patterns": [r"\d{2,4}-x"]}) == {
        "sampler_arg": 0.25, "log_export_level": logging.WARNING, "redact_keys": ("ssn", "iban"),
        "redact_patterns": (r"\d{2,4}-x",)}
    assert {s.field for s in settings.TABLE if s.live} == set(settings.LIVE_FIELDS) >= {
        "sampler_arg", "log_export_level", "redact_keys", "redact_patterns", "ai_content"}


@pytest.mark.parametrize(("requested", "reason"), [
    ({"sampler_arg": 1.5}, "sampler_arg='1.5' is invalid (accepted: a number from 0 to 1)"),
    ({"log_export_level": "loud"}, "log_export_level='loud' is invalid (accepted: one of debug"),
    ({"redact_patterns": ["(unclosed"]}, "redact_patterns: pattern '(unclosed' is not a valid regular expression"),
    ({"otlp_endpoint": "http://elsewhere:4318"}, "otlp_endpoint: not a setting that changes live"),
    ({"sampler_arg": 0.5, "colour": "red"}, "colour: not a setting that changes live"),
])
def test_a_bad_remote_value_is_refused_with_its_reason(requested: dict, reason: str) -> None:
    with pytest.raises(settings.InvalidValue) as refused:
        settings.live_values(requested)
    assert reason in str(refused.value)


def test_remote_configuration_files_are_json_or_yaml_objects() -> None:
    from opentelemetry._opamp.proto import opamp_pb2

    def config(body: str, content_type: str):
        files = {"otel_distro": opamp_pb2.AgentConfigFile(body=body.encode(), content_type=content_type)}
        return opamp_pb2.AgentRemoteConfig(config=opamp_pb2.AgentConfigMap(config_map=files))

    assert remote.decode_remote_config(config('{"sampler_arg": 0.5}', "application/json")) == {"sampler_arg": 0.5}
    assert remote.decode_remote_config(config("log_export_level: error\n", "text/yaml")) == {
        "log_export_level": "error"}
    assert remote.decode_remote_config(config("", "application/json")) == {}
    for body, content_type, reason in [("[1, 2]", "application/json", "expected an object"),
                                       ("{nope", "application/json", "not JSON"),
                                       ("a: [", "application/yaml", "not YAML")]:
        with pytest.raises(ValueError, match=reason):
            remote.decode_remote_config(config(body, content_type))


def test_backoff_doubles_and_is_capped() -> None:
    delays = [remote._backoff(0.2, n) for n in range(1, 12)]
    assert delays[:3] == [0.4, 0.8, 1.6]
    assert delays == sorted(delays) and max(delays) == 6.0
    assert remote._backoff(30, 10) == 60.0


def test_doctor_says_where_the_service_reports_and_what_changes_live() -> None:
    from otel_distro import doctor

    chosen = settings.load({"OTEL_DISTRO_OPAMP_ENDPOINT": "http://opamp:4320/v1/opamp"}, report=False)
    assert [f.message for f in doctor.check_opamp(chosen)] == [
        "reports to http://opamp:4320/v1/opamp every 30 s; changeable live: " + ", ".join(settings.LIVE_FIELDS)]
    missing = list(doctor.check_opamp(chosen, installed=lambda name: False))
    assert not missing[0].ok and "pip install 'otel-distro[opamp]'" in missing[0].message
    assert list(doctor.check_opamp(settings.load({}, report=False))) == []


# ---------------------------------------------------------------- a real service


@pytest.fixture
def opamp():
    with OpampTestServer() as running:
        yield running


def _start(start_service, receiver, opamp, **extra: str):
    return start_config_app(start_service, telemetry_env(
        receiver.endpoint, OTEL_SERVICE_NAME="live", OTEL_DISTRO_SERVICE_VERSION="2.0.1",
        OTEL_DISTRO_OPAMP_ENDPOINT=opamp.endpoint, OTEL_DISTRO_OPAMP_INTERVAL="0.2",
        OTEL_DISTRO_OPAMP_HEADERS="authorization=Bearer%20t0ken", OTEL_METRICS_EXPORTER="none", **extra))


def _emitted(receiver, tag: str) -> tuple[int, bool, bool]:
    """(spans named tag-i, info record, warning record) received for this tag."""
    spans = sum(s.name.startswith(f"{tag}-") for s in receiver.spans())
    bodies = [str(r.body) for r in receiver.logs()]
    return spans, f"info {tag}" in bodies, any(b.startswith(f"warning {tag} ") for b in bodies)


def _emit_and_wait(base: str, receiver, tag: str) -> tuple[int, bool, bool]:
    """Emit under ``tag``, then a control tag; once the control's warning is in, what came of ``tag``."""
    assert http_get(base + f"/emit?tag={tag}") == 200
    assert http_get(base + f"/emit?tag={tag}.control") == 200
    receiver.wait_for(lambda: _emitted(receiver, f"{tag}.control")[2], what=f"the {tag} control warning")
    time.sleep(0.5)  # spans of the same request batch go out within the 200 ms schedule delay
    return _emitted(receiver, tag)


def _apply(opamp: OpampTestServer, config: dict) -> tuple[int, str]:
    config_hash = opamp.offer(config)
    return opamp.wait_for(lambda: (opamp.status(config_hash) or [None])[0], what="the agent's status")


@pytest.mark.integration
def test_the_service_reports_itself_and_changes_sampling_and_log_level_live(receiver, start_service,
                                                                           opamp) -> None:
    service, base = _start(start_service, receiver, opamp)
    instance = opamp.wait_for(lambda: [i for i in opamp.snapshot() if i.effective_config], what="a report")[0]
    assert instance.description["service.name"] == "live"
    assert instance.description["service.version"] == "2.0.1"
    assert instance.description["service.instance.id"] == instance.uid
    assert instance.health.healthy and instance.health.status == "running"
    assert instance.setting("OTEL_DISTRO_LOG_EXPORT_LEVEL") == {
        "variable": "OTEL_DISTRO_LOG_EXPORT_LEVEL", "value": "info", "source": "default"}
    assert instance.setting("OTEL_DISTRO_OPAMP_HEADERS")["value"] == "****"

    assert _emit_and_wait(base, receiver, "before") == (10, True, True)

    assert _apply(opamp, {"sampler_arg": 0.0, "log_export_level": "warning"}) == (APPLIED, "")
    # Spans of the new requests are dropped; only warnings are exported.
    assert _emit_and_wait(base, receiver, "after") == (0, False, True)
    opamp.wait_for(lambda: opamp.snapshot()[0].setting("OTEL_DISTRO_LOG_EXPORT_LEVEL")["value"] == "warning",
                   what="the effective configuration")
    assert opamp.snapshot()[0].setting("OTEL_DISTRO_LOG_EXPORT_LEVEL")["source"] == "remote (OpAMP)"
    assert opamp.snapshot()[0].setting("OTEL_TRACES_SAMPLER_ARG")["value"] == "0.0"

    status, reason = _apply(opamp, {"sampler_arg": 1.5, "log_export_level": "info"})
    assert status == FAILED and "sampler_arg='1.5' is invalid (accepted: a number from 0 to 1)" in reason
    assert _emit_and_wait(base, receiver, "refused") == (0, False, True), "a refused change changes nothing"

    # An empty configuration: back to the start-up settings.
    assert _apply(opamp, {}) == (APPLIED, "")
    assert _emit_and_wait(base, receiver, "again") == (10, True, True)
    assert len({i.uid for i in opamp.snapshot()}) == 1
    assert "Traceback" not in service.output()


@pytest.mark.integration
def test_settings_from_a_configuration_file_change_live_too(receiver, start_service, opamp, tmp_path) -> None:
    from tests.test_config_file import GOOD

    path = tmp_path / "otel.yaml"
    path.write_text(GOOD.replace("{endpoint}", receiver.endpoint))  # log_export_level: warning
    _, base = _start(start_service, receiver, opamp, OTEL_CONFIG_FILE=str(path))
    instance = opamp.wait_for(lambda: [i for i in opamp.snapshot() if i.effective_config], what="a report")[0]
    assert instance.setting("OTEL_DISTRO_LOG_EXPORT_LEVEL")["source"] == "file"
    assert _emit_and_wait(base, receiver, "filed") == (10, False, True)
    assert _apply(opamp, {"log_export_level": "info", "sampler_arg": 0}) == (APPLIED, "")
    assert _emit_and_wait(base, receiver, "remote") == (0, True, True)
    assert _apply(opamp, {}) == (APPLIED, "")  # back to the file's settings and sampler
    assert _emit_and_wait(base, receiver, "back") == (10, False, True)


@pytest.mark.integration
def test_the_genai_content_policy_changes_live(receiver, start_service, opamp) -> None:
    _, base = _start(start_service, receiver, opamp)

    def prompt(tag: str) -> object:
        _emit_and_wait(base, receiver, tag)
        chat = receiver.wait_for(lambda: [s for s in receiver.spans() if s.name == f"chat {tag}"], what="the chat")
        return chat[0].attributes.get("gen_ai.input.messages")

    assert prompt("off") is None  # the default: removed
    assert _apply(opamp, {"ai_content": "full"}) == (APPLIED, "")
    assert prompt("full") == '[{"role": "user", "content": "hello full"}]'
    status, reason = _apply(opamp, {"ai_content": "everything"})
    assert status == FAILED and "ai_content='everything' is invalid" in reason
    assert _apply(opamp, {}) == (APPLIED, "")
    assert prompt("restored") is None


@pytest.mark.integration
def test_redaction_keys_change_live(receiver, start_service, opamp) -> None:
    _, base = _start(start_service, receiver, opamp)
    assert _emit_and_wait(base, receiver, "plain")[0] == 10
    assert next(s for s in receiver.spans() if s.name == "plain-0").attributes["ssn"] == "078-05-1120"
    assert _apply(opamp, {"redact_keys": ["ssn"]}) == (APPLIED, "")
    assert _emit_and_wait(base, receiver, "masked")[0] == 10
    assert next(s for s in receiver.spans() if s.name == "masked-0").attributes["ssn"] == "[REDACTED]"


def _latencies(url: str, count: int) -> list[float]:
    took = []
    for _ in range(count):
        began = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
        took.append(time.perf_counter() - began)
    return took


@pytest.mark.integration
def test_a_slow_or_down_server_costs_the_app_nothing_and_is_reported_once(receiver, start_service,
                                                                         opamp) -> None:
    service, base = _start(start_service, receiver, opamp)
    opamp.wait_for(lambda: opamp.snapshot(), what="a first report")
    # Slow: every answer takes 3 s (the agent's requests time out after 5 s); the app's requests do not wait.
    opamp.delay = 3.0
    slow = _latencies(base + "/health", 20)
    opamp.delay = 0.0
    opamp.down()
    down = _latencies(base + "/health", 20)
    # The poll that was waiting for the slow answer ends; the next ones are refused, and said so once.
    opamp.wait_for(lambda: "not reachable" in service.output(), timeout=20, what="the agent to notice")
    time.sleep(1.0)  # a few more polls fail meanwhile
    opamp.up()
    # Retried with backoff: the agent comes back by itself and takes a change.
    assert _apply(opamp, {"log_export_level": "error"}) == (APPLIED, "")
    # Wide margins for a loaded 2-core machine: an app request that waited for the OpAMP server would take
    # at least the server's 3 s delay.
    assert max(slow) < 1.5 and max(down) < 1.5, (slow, down)
    lines = [line for line in service.output().splitlines() if "OpAMP server" in line]
    assert len(lines) == 2, lines
    assert f"OpAMP server {opamp.endpoint} not reachable" in lines[0] and "further failures" in lines[0]
    assert lines[1].endswith(f"OpAMP server {opamp.endpoint} answers again")


@pytest.mark.integration
def test_a_service_that_stops_says_goodbye_to_the_server(receiver, start_service, opamp) -> None:
    service, _ = _start(start_service, receiver, opamp)
    instance = opamp.wait_for(lambda: [i for i in opamp.snapshot() if i.description], what="a report")[0]
    assert not instance.disconnected
    service.signal()
    service.wait(30)  # uvicorn re-raises SIGTERM after its graceful shutdown: the status is not the point here
    gone = {i.uid: i for i in opamp.snapshot()}[instance.uid]
    assert gone.disconnected, "AgentDisconnect is sent before the process exits"
    assert len(opamp.snapshot()) == 1


QUICK_EXIT = "import time; time.sleep(0.5); print('app ran', flush=True)"


@pytest.mark.integration
@pytest.mark.parametrize("server", ["slow", "down"])
def test_a_slow_or_down_server_does_not_hold_up_exit(server: str, opamp) -> None:
    env = telemetry_env("http://127.0.0.1:9", OTEL_SERVICE_NAME="leaving", OTEL_DISTRO_OPAMP_ENDPOINT=opamp.endpoint,
                        OTEL_DISTRO_OPAMP_INTERVAL="0.2", OTEL_METRICS_EXPORTER="none")
    if server == "slow":
        opamp.delay = 120.0  # every answer: longer than the run's whole time limit below
    else:
        opamp.down()
    # A goodbye that waited for the server would make the run outlive its limit (a loaded machine takes up to
    # ~10 s to start a process under opentelemetry-instrument; the distro waits DISCONNECT_WAIT_S at most).
    process = subprocess.Popen([str(BIN / "opentelemetry-instrument"), str(BIN / "python"), "-c", QUICK_EXIT],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "app ran\n"
        ran = time.monotonic()
        assert process.wait(60) == 0, process.stderr.read()
        leaving = time.monotonic() - ran
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        process.stdout.close()
        process.stderr.close()
        opamp.delay = 0.0
    # From the app's last line to the exit: the distro's bounded shutdown (nothing listens for the OTLP exports
    # either) and the goodbye. Waiting for the server's answer would take 120 s, or the 5 s request timeout.
    assert leaving < 4.0, leaving


@pytest.mark.integration
def test_each_forked_process_reports_as_its_own_instance(receiver, opamp, start_service, tmp_path: Path) -> None:
    marker = tmp_path / "running"
    marker.write_text("")
    env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="forking", OTEL_DISTRO_OPAMP_ENDPOINT=opamp.endpoint,
                        OTEL_DISTRO_OPAMP_INTERVAL="0.2", OTEL_METRICS_EXPORTER="none")
    service = start_service([str(BIN / "opentelemetry-instrument"), str(BIN / "python"), "tests/apps/opamp_fork.py",
                             str(marker)], env)
    try:
        three = opamp.wait_for(lambda: len([i for i in opamp.snapshot() if i.description]) >= 3 and opamp.snapshot(),
                               what="three processes")
        assert len(three) == 3
        assert {i.description["service.name"] for i in three} == {"forking"}
        assert len({i.description["process.pid"] for i in three}) == 3
        assert len({uuid.UUID(i.uid) for i in three}) == 3
        config_hash = opamp.offer({"sampler_arg": 0.5})
        statuses = opamp.wait_for(lambda: len(opamp.status(config_hash)) == 3 and opamp.status(config_hash),
                                  what="every process's status")
        assert statuses == [(APPLIED, "")] * 3
    finally:
        marker.unlink()
    assert service.wait(30) == 0


# ---------------------------------------------------------------- applying, in process


def _live(environ: dict[str, str]):
    from types import SimpleNamespace

    from opentelemetry.sdk.trace import TracerProvider

    from otel_distro import live, traces

    chosen = settings.load(environ, report=False)
    provider = TracerProvider(sampler=traces.sampler(chosen), shutdown_on_exit=False)
    sampler = live.prepare(provider)
    telemetry = SimpleNamespace(settings=chosen)
    return live.LiveSettings(telemetry, sampler), telemetry, provider, sampler


def _sampled(tracer, count: int = 200) -> int:
    kept = 0
    for i in range(count):
        with tracer.start_as_current_span(f"s{i}") as span:
            kept += span.is_recording()
    return kept


def test_a_ratio_change_reaches_tracers_taken_before_it_and_an_empty_map_restores_the_start() -> None:
    from otel_distro import live

    applier, telemetry, provider, sampler = _live({"OTEL_TRACES_SAMPLER": "always_on"})
    tracer = provider.get_tracer("before the change")
    original = sampler.delegate
    assert _sampled(tracer) == 200
    assert applier.apply({"sampler_arg": 0}) == {"sampler_arg": 0.0}
    assert _sampled(tracer) == 0
    assert telemetry.settings.sampler_arg == 0.0 and telemetry.settings.sources["sampler_arg"] == live.REMOTE_SOURCE
    assert "TraceIdRatioBased" in sampler.get_description() and "ParentBased" not in sampler.get_description()
    assert applier.apply({}) == {"sampler_arg": 1.0}
    assert sampler.delegate is original and _sampled(tracer) == 200
    assert telemetry.settings.sources["sampler_arg"] == "default"


def test_a_parent_based_sampler_stays_parent_based() -> None:
    applier, _, _, sampler = _live({})
    applier.apply({"sampler_arg": 0.5})
    assert sampler.get_description().startswith("Live{ParentBased{root:TraceIdRatioBased{0.5}")


def test_a_refused_change_changes_nothing() -> None:
    from otel_distro import live

    applier, telemetry, _, sampler = _live({"OTEL_DISTRO_LOG_EXPORT_LEVEL": "error"})
    before, delegate = telemetry.settings, sampler.delegate
    with pytest.raises(live.RefusedChange, match="log_export_level='loud' is invalid"):
        applier.apply({"sampler_arg": 0.1, "log_export_level": "loud"})
    assert telemetry.settings is before and sampler.delegate is delegate


def test_redaction_rules_cannot_change_when_redaction_is_off() -> None:
    from otel_distro import live

    applier, _, _, _ = _live({"OTEL_DISTRO_REDACT": "false"})
    with pytest.raises(live.RefusedChange, match="redaction is off"):
        applier.apply({"redact_keys": ["ssn"]})


def test_new_redaction_rules_reach_the_redactor_every_exporter_holds() -> None:
    from otel_distro import otlp_wire, redaction

    # Settings no other test uses: the redactor they share (from_settings caches it) is this test's alone.
    applier, telemetry, _, _ = _live({"OTEL_DISTRO_REDACT_MAX_LENGTH": "12345"})
    held = redaction.from_settings(telemetry.settings)
    encoder = otlp_wire.Encoder(held)
    assert held.value("ssn", "078-05-1120") == "078-05-1120"
    out: list[bytes] = []
    encoder._attributes(out, b"\x0a", {"ssn": "078-05-1120"})  # remembered, redacted under the old rules
    try:
        applier.apply({"redact_keys": ["ssn"]})
        assert held.value("ssn", "078-05-1120") == redaction.REDACTED
        again: list[bytes] = []
        encoder._attributes(again, b"\x0a", {"ssn": "078-05-1120"})
        assert b"078-05-1120" in out[0] and b"078-05-1120" not in again[0]
    finally:
        applier.apply({})  # the start-up rules again
    assert held.value("ssn", "078-05-1120") == "078-05-1120"


def test_a_server_answering_garbage_is_a_failure_retried_with_backoff_and_reported_once(opamp, caplog) -> None:
    from opentelemetry.sdk.resources import Resource

    applier, _, _, _ = _live({})
    agent = remote.Agent(opamp.endpoint, {}, 0.2, applier, Resource({"service.name": "garbled"}))
    opamp.broken = True
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        delays = [agent._poll_once() for _ in range(3)]
        opamp.broken = False
        recovered = agent._poll_once()
    assert delays == [0.4, 0.8, 1.6]
    assert recovered == 0.2  # the next poll after one interval
    said = [r.getMessage() for r in caplog.records if "OpAMP server" in r.getMessage()]
    assert len(said) == 2 and "not reachable" in said[0] and said[1].endswith("answers again")
    assert opamp.snapshot()[0].description["service.name"] == "garbled"


# ---------------------------------------------------------------- otel-distro doctor asks the server


@pytest.mark.integration
@pytest.mark.parametrize(("server", "said"), [
    ("answering", "[ok] opamp server: {endpoint} answers as an OpAMP server ("),
    ("down", "[PROBLEM] opamp server: {endpoint}: not reachable ("),
    ("slow", "[PROBLEM] opamp server: {endpoint}: no answer within 1 s"),
    ("garbage", "[PROBLEM] opamp server: {endpoint}: reachable, but its answer is no OpAMP ServerToAgent message"),
    ("wrong path", "[PROBLEM] opamp server: {endpoint}: reachable, but answers HTTP 404 Not Found"),
])
def test_doctor_says_in_one_line_whether_the_opamp_server_answers(server: str, said: str, receiver, opamp) -> None:
    from tests.test_doctor import _doctor

    endpoint = opamp.endpoint.replace("/v1/opamp", "/v1/elsewhere") if server == "wrong path" else opamp.endpoint
    opamp.delay = 120.0 if server == "slow" else 0.0  # longer than the doctor's whole run may take below
    opamp.broken = server == "garbage"
    if server == "down":
        opamp.down()
    try:
        done = _doctor(telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="shop", OTEL_DISTRO_OPAMP_ENDPOINT=endpoint),
                       "--probe-timeout", "1")
    finally:
        opamp.delay, opamp.broken = 0.0, False
    lines = [line.strip() for line in done.stdout.splitlines() if "opamp server" in line]
    assert len(lines) == 1, done.stdout
    assert lines[0].startswith(said.format(endpoint=endpoint)), lines
    assert done.returncode == (0 if server == "answering" else 1), done.stdout
    if server == "answering":
        (probe,) = opamp.snapshot()
        assert probe.description["service.name"] == remote.PROBE_NAME and probe.disconnected
