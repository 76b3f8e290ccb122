"""GenAI semantic-convention names, our own copy.

The constants in ``opentelemetry-semantic-conventions`` are marked deprecated
("moved" to the GenAI repository), so the distro keeps the names it relies on
here. Status of the conventions: Development. Cost has no standard name yet;
``gen_ai.client.cost`` and friends are this distro's (the Collector rules and
Grafana dashboards in ``collector/`` use them).
"""

from __future__ import annotations

# ------------------------------------------------------------------ metrics
TOKEN_USAGE = "gen_ai.client.token.usage"
OPERATION_DURATION = "gen_ai.client.operation.duration"
COST = "gen_ai.client.cost"
CACHE_SAVINGS = "gen_ai.client.cache_savings"
UNPRICED_CALLS = "gen_ai.client.unpriced_calls"
# Streaming (semconv names; recorded by the distro for llm_call streams, by util-genai for its own spans).
TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
TIME_PER_OUTPUT_CHUNK = "gen_ai.client.operation.time_per_output_chunk"
# Agents and tools, derived from invoke_agent / execute_tool spans. The distro's names: util-genai's
# gen_ai.invoke_agent.duration / gen_ai.execute_tool.duration exist only for its own spans.
AGENT_RUN_DURATION = "gen_ai.agent.run.duration"
AGENT_TOKEN_USAGE = "gen_ai.agent.token.usage"
TOOL_CALL_DURATION = "gen_ai.tool.call.duration"
# Budgets (the distro's): spend since start-up and the limit, by budget name and period.
BUDGET_SPEND = "gen_ai.budget.spend"
BUDGET_LIMIT = "gen_ai.budget.limit"
BUDGET = "budget"
BUDGET_PERIOD = "period"
AGENT_DURATION_BUCKETS: tuple[float, ...] = (
    0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 204.8, 409.6)

TOKEN_BUCKETS: tuple[float, ...] = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS: tuple[float, ...] = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)

# --------------------------------------------------------------- attributes
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"  # previous name of gen_ai.provider.name
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
TOKEN_TYPE = "gen_ai.token.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
COST_SOURCE = "cost.source"
UNPRICED_REASON = "reason"  # on gen_ai.client.unpriced_calls
AGENT_NAME = "gen_ai.agent.name"
TOOL_NAME = "gen_ai.tool.name"
REQUEST_STREAM = "gen_ai.request.stream"

USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"  # includes cached input tokens
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_WRITE = "gen_ai.usage.cache_write.input_tokens"
# Previous names, still emitted by many instrumentations.
USAGE_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"
USAGE_COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"
USAGE_CACHE_CREATION = "gen_ai.usage.cache_creation.input_tokens"
USAGE_CACHE_READ_FLAT = "gen_ai.usage.cache_read_input_tokens"  # OpenLLMetry
USAGE_CACHE_CREATION_FLAT = "gen_ai.usage.cache_creation_input_tokens"  # OpenLLMetry

# Cost on a span, as proposed in open-telemetry/semantic-conventions-genai PR #443
# (open; implements issue #287): the amount, its ISO 4217 currency, and where it
# came from (provider: present in the response received; local: computed by the
# recorder). Only a provider-reported amount in USD replaces the distro's price.
USAGE_COST_AMOUNT = "gen_ai.usage.cost.amount"
USAGE_COST_CURRENCY = "gen_ai.usage.cost.currency"
USAGE_COST_SOURCE = "gen_ai.usage.cost.source"

# The distro's own span attributes (no convention exists): on a call with no price, why; on the local
# root span and every agent run span, the summed cost of the calls under it (USD), how many calls, and
# how many of them had no price (their cost is missing from the sum).
COST_UNPRICED_REASON = "otel_distro.gen_ai.cost.unpriced_reason"
COST_TOTAL = "otel_distro.gen_ai.cost.total"
CALLS_TOTAL = "otel_distro.gen_ai.calls"
UNPRICED_TOTAL = "otel_distro.gen_ai.unpriced_calls"
# Why a call has no price.
UNKNOWN_MODEL = "unknown_model"
NO_USAGE = "no_usage"
STREAM_WITHOUT_USAGE = "stream_without_usage"

# Token types of gen_ai.client.token.usage and gen_ai.client.cost.
INPUT = "input"
OUTPUT = "output"
CACHE_READ = "cache_read"
CACHE_WRITE = "cache_write"

# cost.source values: computed here from prices, or reported by the provider's API.
SOURCE_LOCAL = "local"
SOURCE_PROVIDER = "provider"

# Operations that are not one model inference: their spans may carry usage
# summed over child calls, which are counted on their own.
NOT_INFERENCE = frozenset({
    "execute_tool", "invoke_agent", "create_agent", "invoke_workflow", "retrieval",
})

# gen_ai.provider.name values (semconv) to genai-prices provider ids.
PROVIDER_IDS: dict[str, str] = {
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "x_ai": "x-ai",
    "mistral_ai": "mistral",
    "az.ai.openai": "azure",
    "az.ai.inference": "azure",
}
