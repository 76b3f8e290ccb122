"""OpAMP over HTTP: each process reports itself and takes live settings from the server.

With ``OTEL_DISTRO_OPAMP_ENDPOINT`` set, one daemon thread per process polls the server every
``OTEL_DISTRO_OPAMP_INTERVAL`` seconds with an ``AgentToServer`` message: the agent description
(``service.name``, ``service.version``, ``service.instance.id`` = the instance uid, host and process), health,
the effective configuration (JSON, one entry per setting with its source) and the status of the last remote
configuration. A ``remote_config`` in the answer is a map of setting names to values (a JSON or YAML object in
any of its files); it is validated whole by :mod:`otel_distro.live` and applied without restart (status
APPLIED) or refused with the reason, changing nothing (FAILED). The next poll carries the status at once.

The messages are the OpAMP protobuf messages that ``opentelemetry-opamp-client`` ships; its agent loop is not
used: it reports no health, keeps its threads and instance uid across fork(), and logs every failed attempt.
Here a server that is down or slow costs the application nothing (the requests are the thread's, with a
timeout); failures are retried with exponential backoff and reported on one line, and again once when the
server answers again. A forked child starts its own thread with its own instance uid. At shutdown the agent
sends an ``AgentDisconnect`` and waits ``DISCONNECT_WAIT_S`` at most for it (not at all while the server is not
answering).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Mapping
from typing import Any

from otel_distro import live
from otel_distro._internal_errors import report_internal_error

_log = logging.getLogger("otel_distro")

REQUEST_TIMEOUT_S = 5.0
# The longest the agent's goodbye (AgentDisconnect) may hold up the process's exit.
DISCONNECT_WAIT_S = 0.5
_MAX_BACKOFF_S = 60.0
_CONFIG_NAME = "otel_distro"


def _backoff(interval: float, failures: int) -> float:
    """Seconds before the next try after ``failures`` failures in a row: doubling, capped."""
    cap = max(interval, min(_MAX_BACKOFF_S, 30 * interval))
    return min(interval * 2 ** min(failures, 16), cap)


def decode_remote_config(config: Any) -> dict[str, Any]:
    """The settings of an ``AgentRemoteConfig``: every file's JSON or YAML object, merged. Raises ValueError."""
    merged: dict[str, Any] = {}
    for name, file in sorted(config.config.config_map.items()):
        body = file.body.decode("utf-8") if file.body else ""
        if not body.strip():
            continue
        if "yaml" in file.content_type:
            import yaml

            try:
                values = yaml.safe_load(body)
            except yaml.YAMLError as err:
                raise ValueError(f"config file {name!r}: not YAML ({' '.join(str(err).split())})") from None
        else:
            try:
                values = json.loads(body)
            except ValueError as err:
                raise ValueError(f"config file {name!r}: not JSON ({err})") from None
        if not isinstance(values, Mapping):
            raise ValueError(f"config file {name!r}: expected an object of settings, got {type(values).__name__}")
        merged.update(values)
    return merged


def post(endpoint: str, headers: Mapping[str, str], message: Any, timeout_s: float) -> Any:
    """POST one AgentToServer; the server's ServerToAgent. Raises on any failure (refused, timeout, HTTP error
    status, a body that is no ServerToAgent)."""
    from opentelemetry._opamp.proto import opamp_pb2
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    request = urllib.request.Request(endpoint, data=message.SerializeToString(), method="POST",
                                     headers={"Content-Type": "application/x-protobuf", **headers})
    with suppress_instrumentation(), urllib.request.urlopen(request, timeout=timeout_s) as response:
        body = response.read()
    answer = opamp_pb2.ServerToAgent()
    answer.ParseFromString(body)
    return answer


PROBE_NAME = "otel-distro-doctor"


def probe(endpoint: str, headers: Mapping[str, str], timeout_s: float) -> float:
    """Ask the server once, as an agent that arrives and leaves in one message; seconds it took to answer.

    For ``otel-distro doctor``: the server sees an instance named PROBE_NAME that disconnects at once. Raises
    as :func:`post_within` does.
    """
    from opentelemetry._opamp.proto import opamp_pb2 as pb
    from opentelemetry._opamp.proto.anyvalue_pb2 import AnyValue, KeyValue

    name = KeyValue(key="service.name", value=AnyValue(string_value=PROBE_NAME))
    message = pb.AgentToServer(instance_uid=uuid.uuid4().bytes, capabilities=pb.AgentCapabilities_ReportsStatus,
                               agent_description=pb.AgentDescription(identifying_attributes=[name]),
                               agent_disconnect=pb.AgentDisconnect())
    began = time.monotonic()
    post_within(endpoint, headers, message, timeout_s)
    return time.monotonic() - began


def post_within(endpoint: str, headers: Mapping[str, str], message: Any, bound_s: float) -> Any:
    """:func:`post`, given up after ``bound_s`` in all (the request's own timeout leaves name resolution and a
    trickling answer unbounded): raises TimeoutError then, the request going on in a daemon thread."""
    outcome: list[Any] = []

    def send() -> None:
        try:
            outcome.append(post(endpoint, headers, message, bound_s))
        except Exception as err:
            outcome.append(err)

    sender = threading.Thread(target=send, name="otel-distro-opamp-once", daemon=True)
    sender.start()
    sender.join(bound_s)
    if not outcome:
        raise TimeoutError(f"no answer within {bound_s:g} s")
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]


class Agent:
    """The OpAMP client of this process: one polling thread, restarted with a new instance uid after fork."""

    def __init__(self, endpoint: str, headers: Mapping[str, str], interval_s: float,
                 settings: live.LiveSettings, resource: Any) -> None:
        from opentelemetry._opamp.proto import opamp_pb2

        self._pb = opamp_pb2
        self.endpoint = endpoint
        self._headers = dict(headers)
        self.interval_s = interval_s
        self._live = settings
        self._resource = resource
        self._started_ns = time.time_ns()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._begin_process()

    # ---- lifecycle
    def _begin_process(self) -> None:
        self.instance_uid = uuid.uuid4().bytes
        self._sequence = 0
        self._status: Any = None
        self._last_hash = b""
        self._full_state = True
        self._failures = 0
        self._thread = threading.Thread(target=self._run, name="otel-distro-opamp", daemon=True)

    def start(self) -> Agent:
        self._thread.start()
        return self

    def after_fork_in_child(self) -> None:
        if self._stop.is_set():
            return
        self._stop, self._wake = threading.Event(), threading.Event()
        self._begin_process()
        self.start()

    def stop(self) -> None:
        """Stop polling and tell the server this instance leaves (AgentDisconnect), waiting DISCONNECT_WAIT_S
        at most; not at all while the server is not answering."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        if self._failures:
            return
        goodbye = self._pb.AgentToServer(instance_uid=self.instance_uid, sequence_num=self._sequence,
                                         agent_disconnect=self._pb.AgentDisconnect())
        try:
            post_within(self.endpoint, self._headers, goodbye, DISCONNECT_WAIT_S)
        except Exception:  # leaving anyway: the server sees the instance go silent, as without the message
            pass

    # ---- the thread
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self._poll_once()
            except Exception as err:  # a bug of ours: keep the thread, report once
                report_internal_error("remote.poll", "an OpAMP poll failed; polling goes on", err)
                delay = self.interval_s
            self._wake.wait(delay)
            self._wake.clear()

    def _poll_once(self) -> float:
        message = self._message()
        try:
            answer = self._send(message)
        except Exception as err:  # refused, timed out, an HTTP error status, a body that is no ServerToAgent
            self._failures += 1
            if self._failures == 1:
                _log.warning("otel-distro: OpAMP server %s not reachable (%s); retrying with backoff, further "
                             "failures are not reported", self.endpoint, getattr(err, "reason", err))
            self._full_state = True
            return _backoff(self.interval_s, self._failures)
        if self._failures:
            _log.warning("otel-distro: OpAMP server %s answers again", self.endpoint)
            self._failures = 0
        self._full_state = False
        return 0.0 if self._handle(answer) else self.interval_s

    def _send(self, message: Any) -> Any:
        answer = post(self.endpoint, self._headers, message, REQUEST_TIMEOUT_S)
        self._sequence += 1
        return answer

    def _handle(self, answer: Any) -> bool:
        """Act on the server's answer; True when the server should hear back at once."""
        pb = self._pb
        if answer.HasField("agent_identification") and answer.agent_identification.new_instance_uid:
            self.instance_uid = answer.agent_identification.new_instance_uid
        if answer.flags & pb.ServerToAgentFlags_ReportFullState:
            self._full_state = True
        if answer.HasField("remote_config") and answer.remote_config.config_hash != self._last_hash:
            self._apply(answer.remote_config)
            return True
        return self._full_state

    def _apply(self, remote: Any) -> None:
        pb = self._pb
        self._last_hash = remote.config_hash
        try:
            changed = self._live.apply(decode_remote_config(remote))
        except (ValueError, live.RefusedChange) as err:
            _log.warning("otel-distro: remote configuration refused, nothing changed: %s", err)
            self._status = pb.RemoteConfigStatus(last_remote_config_hash=remote.config_hash,
                                                 status=pb.RemoteConfigStatuses_FAILED, error_message=str(err))
            return
        if changed:
            _log.info("otel-distro: remote configuration applied: %s",
                      ", ".join(f"{k}={v!r}" for k, v in changed.items()))
        self._status = pb.RemoteConfigStatus(last_remote_config_hash=remote.config_hash,
                                             status=pb.RemoteConfigStatuses_APPLIED)
        self._full_state = True  # the effective configuration changed

    # ---- messages
    def _message(self) -> Any:
        pb = self._pb
        capabilities = (pb.AgentCapabilities_ReportsStatus | pb.AgentCapabilities_AcceptsRemoteConfig
                        | pb.AgentCapabilities_ReportsRemoteConfig | pb.AgentCapabilities_ReportsEffectiveConfig
                        | pb.AgentCapabilities_ReportsHealth | pb.AgentCapabilities_ReportsHeartbeat)
        message = pb.AgentToServer(instance_uid=self.instance_uid, sequence_num=self._sequence,
                                   capabilities=capabilities, health=self._health())
        if self._status is not None:
            message.remote_config_status.CopyFrom(self._status)
        if self._full_state:
            message.agent_description.CopyFrom(self._description())
            message.effective_config.CopyFrom(self._effective_config())
        return message

    def _health(self) -> Any:
        from otel_distro._internal_errors import internal_error_counts

        errors = internal_error_counts()
        return self._pb.ComponentHealth(
            healthy=True, start_time_unix_nano=self._started_ns, status_time_unix_nano=time.time_ns(),
            status="running" if not errors else "running; internal errors: "
            + ", ".join(f"{k} x{n}" for k, n in sorted(errors.items())))

    def _description(self) -> Any:
        from opentelemetry._opamp.proto.anyvalue_pb2 import AnyValue, KeyValue

        from otel_distro.version import __version__

        attributes = self._resource.attributes
        identifying = {"service.name": str(attributes.get("service.name", "unknown_service")),
                       "service.instance.id": str(uuid.UUID(bytes=self.instance_uid))}
        if attributes.get("service.version"):
            identifying["service.version"] = str(attributes["service.version"])
        if attributes.get("service.namespace"):
            identifying["service.namespace"] = str(attributes["service.namespace"])
        other = {"os.type": platform.system().lower(), "host.name": socket.gethostname(),
                 "process.pid": str(os.getpid()), "telemetry.distro.name": "otel-distro",
                 "telemetry.distro.version": __version__}

        def pairs(values: dict[str, str]) -> list[Any]:
            return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in values.items()]

        return self._pb.AgentDescription(identifying_attributes=pairs(identifying),
                                         non_identifying_attributes=pairs(other))

    def _effective_config(self) -> Any:
        from otel_distro import doctor

        body = json.dumps(doctor.configuration_rows(self._live.current)).encode()
        files = {_CONFIG_NAME: self._pb.AgentConfigFile(body=body, content_type="application/json")}
        return self._pb.EffectiveConfig(config_map=self._pb.AgentConfigMap(config_map=files))


_agent: Agent | None = None
_fork_hook_installed = False


def start(telemetry: Any, sampler: live.LiveSampler) -> Agent | None:
    """Start reporting to the OpAMP server the settings name (configure() calls this when one is set)."""
    global _agent, _fork_hook_installed
    chosen = telemetry.settings
    try:
        agent = Agent(chosen.opamp_endpoint, dict(chosen.opamp_headers), chosen.opamp_interval_s,
                      live.LiveSettings(telemetry, sampler), telemetry.resource)
    except ImportError as err:
        _log.warning("otel-distro: OTEL_DISTRO_OPAMP_ENDPOINT is set but the OpAMP messages are not installed "
                     "(pip install 'otel-distro[opamp]'): %s", err)
        return None
    _agent = agent.start()
    if not _fork_hook_installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_installed = True
    return agent


def _after_fork_in_child() -> None:
    agent = _agent
    if agent is not None:
        try:
            agent.after_fork_in_child()
        except Exception as err:  # never let telemetry break a fork
            report_internal_error("remote.after_fork", "the OpAMP agent was not restarted in a forked child", err)


def stop() -> None:
    global _agent
    agent, _agent = _agent, None
    if agent is not None:
        agent.stop()
