"""Budgets: a budget file read at start-up, spend-vs-limit metrics, the in-process callback once per period.

The alerts on these metrics are tested by promtool (collector/prometheus/tests/genai_budgets_test.yml)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from examples.genai_app import llm_server
from otel_distro.ai.budgets import Budget, BudgetBook, BudgetCrossed, load
from tests.otlp_test_receiver import OtlpTestReceiver
from tests.test_ai_openai import OWN_SCOPE, expected_cost, latest, llm, run_client

__all__ = ["llm"]  # the local LLM server fixture

BUDGETS = """
budgets:
  - name: acme-daily
    period: day
    limit_usd: 0.00002
    match: {tenant: acme, gen_ai.request.model: "gpt-4o*"}
  - name: globex-monthly
    period: month
    limit_usd: 100
    match: {tenant: globex}
  - name: by-user
    period: day
    limit_usd: 1
    match: {user: bob}
"""


@pytest.mark.integration
def test_a_crossed_budget_is_measured_and_called_back_once(receiver: OtlpTestReceiver, llm: llm_server.LLMServer,
                                                           tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text(BUDGETS)
    lines, stderr = run_client(receiver, llm, "--calls", "3", "--tenant", "acme", "--budget-callback",
                               OTEL_DISTRO_AI_BUDGETS_FILE=str(path), OTEL_DISTRO_AI_COST_ATTRIBUTES="tenant")
    calls, (crossed,) = lines[:-1], lines[-1:]
    spent = expected_cost(calls)
    assert expected_cost(calls[:1]) < 0.00002 < expected_cost(calls[:2])  # the second call crosses it
    assert crossed == {"budgets_crossed": [{"budget": "acme-daily", "spent": pytest.approx(expected_cost(calls[:2]))}]}
    # 'user' is not a cost attribute: that budget is refused at start-up, on one line
    refused = [line for line in stderr.splitlines() if "OTEL_DISTRO_AI_BUDGETS_FILE" in line]
    assert len(refused) == 1 and "entry 3 (by-user)" in refused[0] and "user" in refused[0]
    points = receiver.wait_for(lambda: latest(receiver, "gen_ai.budget.spend", OWN_SCOPE), what="budget spend")
    assert {p.attributes["budget"]: p.value for p in points} == {"acme-daily": pytest.approx(spent, rel=1e-9),
                                                                 "globex-monthly": 0.0}
    limits = latest(receiver, "gen_ai.budget.limit", OWN_SCOPE)
    assert {(p.attributes["budget"], p.attributes["period"], p.value) for p in limits} == {
        ("acme-daily", "day", 0.00002), ("globex-monthly", "month", 100.0)}


class Clock:
    def __init__(self, when: datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now


def collect(book: BudgetBook, into: list[BudgetCrossed], done: threading.Event) -> None:
    def callback(event: BudgetCrossed) -> None:
        into.append(event)
        done.set()
    book._callbacks.append(callback)


def test_callback_runs_once_per_period_and_again_in_the_next() -> None:
    clock = Clock(datetime(2026, 11, 30, 22, 0, tzinfo=UTC))
    seen: list[BudgetCrossed] = []
    done = threading.Event()
    book = BudgetBook([Budget("daily", "day", 1.0, (("tenant", "acme"),))], clock=clock)
    collect(book, seen, done)
    for _ in range(3):
        book.add(0.6, {"tenant": "acme"})
    book.add(5.0, {"tenant": "globex"})  # matches no budget
    assert done.wait(5) and len(seen) == 1
    assert seen[0].spent_usd == pytest.approx(1.2) and seen[0].period_start == datetime(2026, 11, 30, tzinfo=UTC)
    done.clear()
    clock.now = datetime(2026, 12, 1, 0, 30, tzinfo=UTC).timestamp()  # a new day: a new budget
    book.add(0.6, {"tenant": "acme"})
    assert not done.wait(0.2)
    book.add(0.6, {"tenant": "acme"})
    assert done.wait(5) and len(seen) == 2 and seen[1].period_start == datetime(2026, 12, 1, tzinfo=UTC)
    assert book.spend()[0][1] == pytest.approx(3.0)  # the exported counter never resets


def test_a_failing_callback_does_not_reach_the_caller() -> None:
    book = BudgetBook([Budget("any", "month", 0.5)])
    failed = threading.Event()

    def callback(event: BudgetCrossed) -> None:
        failed.set()
        raise RuntimeError("pager down")
    book._callbacks.append(callback)
    book.add(1.0, {})  # does not raise
    assert failed.wait(5)


@pytest.mark.parametrize(("entry", "problem"), [
    ("{name: a, period: week, limit_usd: 1}", "'period' must be one of day, month"),
    ("{name: a, period: day, limit_usd: 0}", "'limit_usd' must be a positive number"),
    ("{name: a, period: day, limit_usd: 1, match: {region: eu}}", "match key(s) region not allowed"),
    ("{name: a, period: day, limit_usd: 1, owner: me}", "unknown key(s) owner"),
])
def test_bad_budget_entries_are_reported_and_skipped(tmp_path: Path, entry: str, problem: str) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(f"budgets:\n  - {entry}\n  - {{name: ok, period: day, limit_usd: 2, match: {{tenant: x}}}}\n")
    lines: list[str] = []
    budgets = load(path, ["tenant"], report=lines.append)
    assert [b.name for b in budgets] == ["ok"]
    assert len(lines) == 1 and problem in lines[0] and "entry 1" in lines[0]
