"""Node's LLM calls are priced in Prometheus with the Python side's price book (collector/prometheus/rules/genai_prices.yml).

The Express service's OpenAI instrumentation sends `gen_ai.client.token.usage` with `gen_ai.request.model` and
`gen_ai.token.type` (tests/test_express.py checks that on a real call); these rules turn it into USD. Run by
the real `promtool test rules`.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from otel_distro.ai import price_rules
from otel_distro.ai.pricing import PriceBook
from tests.collector.conftest import fill_variables, panel_targets
from tests.conftest import ROOT

RULES_DIR = ROOT / "collector" / "prometheus" / "rules"
RULES = RULES_DIR / "genai_prices.yml"
MODEL = "gpt-4o-mini"
INPUT_PER_MIN, OUTPUT_PER_MIN = 600, 1200

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool is not installed (.ci/run installs Debian's prometheus)")


def test_the_committed_rules_are_what_the_price_book_gives_now() -> None:
    table = price_rules.price_table(price_rules.snapshot_models(price_rules.DEFAULT_PROVIDERS), PriceBook())
    assert RULES.read_text() == price_rules.render(table), \
        "regenerate: python -m otel_distro.ai.price_rules > collector/prometheus/rules/genai_prices.yml"


def test_the_table_holds_the_distro_price_of_a_model() -> None:
    price = PriceBook().lookup("openai", MODEL)
    assert price is not None
    (row_in, row_out) = [row for row in price_rules.price_table([("openai", MODEL)], PriceBook())]
    assert row_in == ("openai", MODEL, "input", pytest.approx(price.input / 1e6, rel=1e-12))
    assert row_out == ("openai", MODEL, "output", pytest.approx(price.output / 1e6, rel=1e-12))


def _promtool_test(spec: dict, spec_file: Path) -> None:
    spec_file.write_text(yaml.safe_dump(spec))
    done = subprocess.run(["promtool", "test", "rules", str(spec_file)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def _series(job: str, token_type: str, per_min: int) -> dict[str, str]:
    labels = (f'job="{job}", gen_ai_request_model="{MODEL}", gen_ai_token_type="{token_type}", '
              'gen_ai_system="openai", gen_ai_operation_name="chat"')
    return {"series": f"gen_ai_client_token_usage_sum{{{labels}}}", "values": f"0+{per_min}x120"}


def _node_and_distro_services() -> list[dict[str, str]]:
    """storefront sends token counts only; shop, a distro service, also prices its calls (+$0.01 a minute),
    so its token counts are not priced again."""
    return [_series("storefront", "input", INPUT_PER_MIN), _series("storefront", "output", OUTPUT_PER_MIN),
            _series("shop", "input", INPUT_PER_MIN), _series("shop", "output", OUTPUT_PER_MIN),
            {"series": f'gen_ai_client_cost_total{{job="shop", instance="shop-1", gen_ai_provider_name="openai", '
                       f'gen_ai_request_model="{MODEL}", gen_ai_token_type="input", cost_source="local"}}',
             "values": "0+0.01x120"}]


def _priced_services_spec(expr_tests: list[dict]) -> dict:
    """A promtool test of the price rules over the two services, an hour of them."""
    return {"rule_files": [str(RULES)], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": _node_and_distro_services(), "promql_expr_test": expr_tests}]}


def _table_price(token_type: str) -> float:
    document = yaml.safe_load(RULES.read_text())
    (expr,) = [rule["expr"] for group in document["groups"] for rule in group["rules"]
               if rule.get("labels", {}).get("gen_ai_request_model") == MODEL
               and rule["labels"]["gen_ai_token_type"] == token_type]
    return float(expr.removeprefix("vector(").removesuffix(")"))


@needs_promtool
def test_token_counts_of_a_service_without_its_own_cost_are_priced(tmp_path: Path) -> None:
    price = PriceBook().lookup("openai", MODEL)
    assert price is not None
    hourly = 60 * (INPUT_PER_MIN * price.input + OUTPUT_PER_MIN * price.output) / 1e6
    per_second_in = INPUT_PER_MIN / 60 * _table_price("input")
    spec = _priced_services_spec([
        {"expr": price_rules.HOURLY_SERIES, "eval_time": "61m",
         "exp_samples": [{"labels": price_rules.HOURLY_SERIES + '{job="storefront"}', "value": hourly}]},
        {"expr": f'{price_rules.RATE_SERIES}{{gen_ai_token_type="input"}}', "eval_time": "30m",
         "exp_samples": [{"labels": price_rules.RATE_SERIES + f'{{job="storefront", gen_ai_request_model="{MODEL}", '
                                    'gen_ai_token_type="input", gen_ai_provider_name="openai"}',
                          "value": per_second_in}]},
    ])
    _promtool_test(spec, tmp_path / "genai_prices_test.yml")


@needs_promtool
def test_ai_cost_alerts_fire_for_a_service_priced_from_its_token_counts(tmp_path: Path) -> None:
    price = PriceBook().lookup("openai", MODEL)
    assert price is not None
    output_per_min = 3_000_000
    hourly = 60 * output_per_min * price.output / 1e6
    assert 100 < hourly < 500  # the $100 threshold only
    spec = {
        "rule_files": [str(RULES), str(RULES_DIR / "recording.yml"), str(RULES_DIR / "genai.yml")],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                _series("storefront", "output", output_per_min),
                # A distro service prices its own calls (recording.yml records its figure), even when its
                # cost series went stale 20 minutes ago (a restart): its token counts are not priced here.
                _series("shop", "output", output_per_min),
                {"series": f'gen_ai_client_cost_total{{job="shop", gen_ai_request_model="{MODEL}", '
                           'gen_ai_token_type="input", cost_source="local"}', "values": "0+0.5x40 stale"},
            ],
            "promql_expr_test": [
                {"expr": price_rules.HOURLY_SERIES, "eval_time": "61m",
                 "exp_samples": [{"labels": price_rules.HOURLY_SERIES + '{job="storefront"}', "value": hourly}]},
                {"expr": f'{price_rules.ALERTED_SERIES}{{job="storefront"}}', "eval_time": "61m",
                 "exp_samples": [{"labels": price_rules.ALERTED_SERIES + '{job="storefront"}', "value": hourly}]},
            ],
            "alert_rule_test": [{
                "eval_time": "70m", "alertname": "AICostPerHourHigh",
                "exp_alerts": [{
                    "exp_labels": {"severity": "warning", "job": "storefront"},
                    "exp_annotations": {
                        "summary": f"storefront spent ${hourly:.2f} on LLM calls in the last hour (threshold $100)",
                        "description": "The estimated GenAI cost of storefront over the last hour is above $100.",
                        "runbook_url": "https://github.com/otel-distro/otel-distro/blob/main/docs/collector.md"
                                       "#aicostperhourhigh"}}],
            }],
        }],
    }
    _promtool_test(spec, tmp_path / "genai_alerts_test.yml")


COST_PANELS = ("Cost per hour (USD)", "Cost by provider and model (last hour)", "Cost by token type (last hour)")
_NEAREST = 1e-9  # promtool compares floats exactly: both sides rounded as PromQL's round() does


def _round(usd: float) -> float:
    return math.floor(usd * (1 / _NEAREST) + 0.5) / (1 / _NEAREST)


@needs_promtool
def test_the_ai_cost_panels_add_the_priced_token_counts_without_counting_a_service_twice(tmp_path: Path) -> None:
    """The "AI costs" dashboard's cost panels, run as Grafana sends them over every service: the distro
    service's own cost counter plus the Node service's priced token counts, the distro service's token
    counts not priced again."""
    price = PriceBook().lookup("openai", MODEL)
    assert price is not None
    node_in, node_out = 60 * INPUT_PER_MIN * price.input / 1e6, 60 * OUTPUT_PER_MIN * price.output / 1e6
    own = 0.6  # the distro service's cost counter: +0.01 a minute for the hour
    panels = {title: fill_variables(expr, ".*") for uid, title, _, expr in panel_targets()
              if uid == "otel-distro-ai" and title in COST_PANELS}
    assert set(panels) == set(COST_PANELS)
    model = f'gen_ai_provider_name="openai", gen_ai_request_model="{MODEL}"'
    expected = {
        "Cost per hour (USD)": [{"labels": "{}", "value": _round(own + node_in + node_out)}],
        "Cost by provider and model (last hour)": [{"labels": f"{{{model}}}",
                                                    "value": _round(own + node_in + node_out)}],
        "Cost by token type (last hour)": [{"labels": '{gen_ai_token_type="input"}', "value": _round(own + node_in)},
                                           {"labels": '{gen_ai_token_type="output"}', "value": _round(node_out)}],
    }
    spec = _priced_services_spec([{"expr": f"round({panels[title]}, {_NEAREST})", "eval_time": "61m",
                                   "exp_samples": samples} for title, samples in expected.items()])
    _promtool_test(spec, tmp_path / "ai_cost_panels_test.yml")
