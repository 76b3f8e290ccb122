"""GenAI content policy at export: the instrumentation captures prompts and completions on spans and in event
log records; OTEL_DISTRO_AI_CONTENT decides what leaves the process, checked in the OTLP bytes received."""

from __future__ import annotations

import pytest

from examples.genai_app import llm_server
from tests.otlp_test_receiver import OtlpTestReceiver
from tests.test_ai_openai import llm, run_client

pytestmark = pytest.mark.integration
__all__ = ["llm"]  # the local LLM server fixture

QUESTION = "zebra-marker password=hunter2 " + "filler " * 40 + "tail-marker"
CAPTURE = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT",
           "OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT": "true",
           "OTEL_DISTRO_REDACT": "false"}  # the exporters' own redaction off: only the content policy acts


def exported(receiver: OtlpTestReceiver) -> bytes:
    """Every OTLP request body received, once the call's span and event record are in."""
    receiver.wait_for(lambda: [s for s in receiver.spans() if s.name == "chat gpt-4o-mini"], what="chat span")
    receiver.wait_for(lambda: [r for r in receiver.logs()
                               if r.attributes.get("gen_ai.operation.name") == "chat"], what="GenAI event")
    return b"".join(body for _, body in list(receiver.raw))


@pytest.mark.parametrize(("policy", "present", "absent"), [
    ("off", [], [b"zebra-marker", b"hunter2", llm_server.REPLY.encode()]),
    ("redacted", [b"zebra-marker", llm_server.REPLY[:40].encode()], [b"hunter2", b"tail-marker"]),
    ("full", [b"zebra-marker", b"hunter2"], [b"tail-marker"]),
])
def test_content_policy_in_the_otlp_bytes(receiver: OtlpTestReceiver, llm: llm_server.LLMServer, policy: str,
                                          present: list[bytes], absent: list[bytes]) -> None:
    run_client(receiver, llm, "--question", QUESTION, OTEL_DISTRO_AI_CONTENT=policy,
               OTEL_DISTRO_AI_CONTENT_MAX_BYTES="100", **CAPTURE)
    data = exported(receiver)
    for text in present:
        assert text in data, f"{text!r} missing with OTEL_DISTRO_AI_CONTENT={policy}"
    for text in absent:
        assert text not in data, f"{text!r} exported with OTEL_DISTRO_AI_CONTENT={policy}"
    (span,) = [s for s in receiver.spans() if s.name == "chat gpt-4o-mini"]
    (event,) = [r for r in receiver.logs() if r.attributes.get("gen_ai.operation.name") == "chat"]
    if policy == "off":
        assert span.attributes["otel_distro.gen_ai.content"] == "removed"
        assert "gen_ai.input.messages" not in span.attributes and "gen_ai.input.messages" not in event.attributes
    else:
        assert "gen_ai.input.messages" in span.attributes and "gen_ai.output.messages" in event.attributes
        assert "…[truncated]" in str(span.attributes["gen_ai.input.messages"])


def test_content_is_off_by_default_whatever_the_instrumentation_captures(receiver: OtlpTestReceiver,
                                                                         llm: llm_server.LLMServer) -> None:
    run_client(receiver, llm, "--question", QUESTION, **CAPTURE)
    data = exported(receiver)
    assert b"zebra-marker" not in data and b"hunter2" not in data
