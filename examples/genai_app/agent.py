"""An agent run with two tools (openai-agents), its model calls to an OpenAI-compatible API.

Under ``opentelemetry-instrument`` with ``otel-distro[agents]`` installed, the run is an
``invoke_agent`` span, each tool call an ``execute_tool`` span, each model call a ``chat``
span; the distro turns them into agent and tool metrics and sums the run's cost::

    OPENAI_BASE_URL=http://127.0.0.1:8081/v1 OPENAI_API_KEY=local \\
        opentelemetry-instrument python -m examples.genai_app.agent

Prints one JSON line: the agent's final output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool
from openai import AsyncOpenAI


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


@function_tool
def get_local_time(city: str) -> str:
    """The local time in a city."""
    return f"It is noon in {city}"


async def run(model: str, question: str) -> str:
    client = AsyncOpenAI(max_retries=0)  # OPENAI_BASE_URL and OPENAI_API_KEY from the environment
    agent = Agent(name="travel-assistant", instructions="Answer travel questions with the tools.",
                  model=OpenAIChatCompletionsModel(model=model, openai_client=client),
                  tools=[get_weather, get_local_time])
    result = await Runner.run(agent, question)
    return str(result.final_output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one agent with two tools")
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--question", default="What is the weather and the time in Paris?")
    args = parser.parse_args(argv)
    print(json.dumps({"output": asyncio.run(run(args.model, args.question))}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
