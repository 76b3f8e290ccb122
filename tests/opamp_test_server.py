"""A test OpAMP server over HTTP: decodes the real AgentToServer protobuf messages and answers ServerToAgent.

It stands in for an OpAMP server (opamp-go's example server, a fleet manager), which cannot run on the test
machines. Binds 127.0.0.1 on a free port; ``offer()`` sets the remote configuration every agent is sent until
it reports a status for it; ``down()``/``up()`` close and reopen the same port; ``stop()`` closes it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry._opamp.proto import opamp_pb2

from tests.otlp_test_receiver import OtlpTestReceiver

APPLIED = opamp_pb2.RemoteConfigStatuses_APPLIED
FAILED = opamp_pb2.RemoteConfigStatuses_FAILED


def _text(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


@dataclass
class Instance:
    """What one agent (one process) has reported."""

    uid: str
    messages: int = 0
    description: dict[str, Any] = field(default_factory=dict)
    health: Any = None
    effective_config: list[dict[str, str]] = field(default_factory=list)
    statuses: list[tuple[bytes, int, str]] = field(default_factory=list)  # (hash, status, error) as reported
    capabilities: int = 0
    disconnected: bool = False  # an AgentDisconnect arrived: the agent said it leaves

    def status_for(self, config_hash: bytes) -> tuple[int, str] | None:
        for reported_hash, status, error in reversed(self.statuses):
            if reported_hash == config_hash:
                return status, error
        return None

    def setting(self, variable: str) -> dict[str, str]:
        return next(row for row in self.effective_config if row["variable"] == variable)


class OpampTestServer:
    """Collects what agents report; thread-safe accessors for the test."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.instances: dict[str, Instance] = {}
        self.requests = 0
        self.errors: list[str] = []
        self._offer: opamp_pb2.AgentRemoteConfig | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if server.delay:
                    time.sleep(server.delay)
                status, answer = 200, b""
                if self.path != "/v1/opamp" or self.headers.get("Content-Type") != "application/x-protobuf":
                    status = 404
                else:
                    try:
                        message = opamp_pb2.AgentToServer.FromString(body)
                    except Exception as err:
                        with server._lock:
                            server.errors.append(f"{type(err).__name__}: {err}")
                        status = 400
                    else:
                        answer = server._receive(message).SerializeToString()
                if server.broken:
                    answer = b"not protobuf"
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._handler = Handler
        self.delay = 0.0  # seconds each answer waits: a slow server
        self.broken = False  # answer 200 with a body that is no ServerToAgent
        self._server = self._bind(0)
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}/v1/opamp"
        self._thread: threading.Thread | None = None

    # ---- protocol
    def _receive(self, message: opamp_pb2.AgentToServer) -> opamp_pb2.ServerToAgent:
        uid = str(uuid.UUID(bytes=message.instance_uid))
        with self._lock:
            self.requests += 1
            instance = self.instances.setdefault(uid, Instance(uid))
            instance.messages += 1
            instance.capabilities = message.capabilities
            if message.HasField("agent_description"):
                described = message.agent_description
                instance.description = {kv.key: _text(kv.value) for kv in
                                        [*described.identifying_attributes, *described.non_identifying_attributes]}
            if message.HasField("health"):
                instance.health = message.health
            if message.HasField("effective_config"):
                files = message.effective_config.config_map.config_map
                instance.effective_config = json.loads(files["otel_distro"].body)
            if message.HasField("agent_disconnect"):
                instance.disconnected = True
            if message.HasField("remote_config_status"):
                reported = message.remote_config_status
                entry = (reported.last_remote_config_hash, reported.status, reported.error_message)
                if not instance.statuses or instance.statuses[-1] != entry:
                    instance.statuses.append(entry)
            answer = opamp_pb2.ServerToAgent(instance_uid=message.instance_uid)
            offer = self._offer
            if offer is not None and instance.status_for(offer.config_hash) is None:
                answer.remote_config.CopyFrom(offer)
            if not instance.description:
                answer.flags = opamp_pb2.ServerToAgentFlags_ReportFullState
        return answer

    def offer(self, settings: dict[str, Any] | str, content_type: str = "application/json") -> bytes:
        """Send this remote configuration to every agent from its next poll; returns its hash."""
        body = settings.encode() if isinstance(settings, str) else json.dumps(settings).encode()
        config_hash = hashlib.sha256(body + content_type.encode()).digest()
        files = {"otel_distro": opamp_pb2.AgentConfigFile(body=body, content_type=content_type)}
        with self._lock:
            self._offer = opamp_pb2.AgentRemoteConfig(config=opamp_pb2.AgentConfigMap(config_map=files),
                                                      config_hash=config_hash)
        return config_hash

    # ---- accessors
    def snapshot(self) -> list[Instance]:
        with self._lock:
            return list(self.instances.values())

    def status(self, config_hash: bytes) -> list[tuple[int, str]]:
        with self._lock:
            return [s for i in self.instances.values() if (s := i.status_for(config_hash)) is not None]

    # Poll until a condition holds, bounded in time (the receiver's, which uses nothing of its own).
    wait_for = OtlpTestReceiver.wait_for

    # ---- lifecycle
    def start(self) -> OpampTestServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        """Close the port: agents' requests are refused."""
        self._server.shutdown()
        self._server.server_close()

    def up(self) -> None:
        """Listen on the same port again."""
        self._server = self._bind(self.port)
        self.start()

    def _bind(self, port: int) -> ThreadingHTTPServer:
        bound = ThreadingHTTPServer(("127.0.0.1", port), self._handler)
        bound.daemon_threads = True
        return bound

    def stop(self) -> None:
        self.down()

    def __enter__(self) -> OpampTestServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
