"""Pricing: genai-prices' bundled data, offline, cached per model; the override file."""

from __future__ import annotations

import logging
import warnings
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from genai_prices import Usage, calc_price
from genai_prices.data_snapshot import get_snapshot

from otel_distro.ai import pricing
from otel_distro.ai.pricing import Price, PriceBook, compute_cost, load_overrides

USAGES = [(1000, 200, 0, 0), (250_000, 5_000, 100_000, 20_000), (3, 7, 1, 1)]


def reference(provider: str, model: str, usage: tuple[int, int, int, int], when: datetime | None = None) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = calc_price(Usage(input_tokens=usage[0], output_tokens=usage[1], cache_read_tokens=usage[2],
                                  cache_write_tokens=usage[3]), model, provider_id=provider,
                            genai_request_timestamp=when)
    return float(result.total_price)


def test_cached_price_gives_genai_prices_cost_for_every_bundled_model() -> None:
    """Tiers, cache prices, per-request fees, conditional prices: the fast path agrees everywhere."""
    now = datetime.now(UTC)
    book = PriceBook(clock=lambda: now.timestamp())
    compared = 0
    for provider in get_snapshot().providers:
        for model in provider.models:
            price = book.lookup(provider.id, model.id)
            if price is None:  # ids that do not match their own model (genai-prices raises too)
                with pytest.raises(LookupError):
                    reference(provider.id, model.id, USAGES[0], now)
                continue
            for usage in USAGES:
                expected = reference(provider.id, model.id, usage, now)
                assert compute_cost(price, *usage).total == pytest.approx(expected, rel=1e-9, abs=1e-15), (
                    provider.id, model.id, usage)
                compared += 1
    assert compared > 6000


def test_price_is_looked_up_once_per_model(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = pricing.genai_prices_lookup

    def counting(*args):
        calls.append(args[:2])
        return real(*args)

    monkeypatch.setattr(pricing, "genai_prices_lookup", counting)
    book = PriceBook()
    for _ in range(5):
        assert book.lookup("openai", "gpt-4o") is not None
    assert calls == [("openai", "gpt-4o")]


def test_semconv_provider_names_map_to_genai_prices_ids() -> None:
    book = PriceBook()
    assert book.lookup("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0") is not None
    assert book.lookup("mistral_ai", "mistral-large-latest") is not None


def test_unknown_model_has_no_price_and_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    book = PriceBook()
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        for _ in range(3):
            assert book.lookup("openai", "no-such-model-7") is None
        assert book.lookup("openai", "no-such-model-8") is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "openai/no-such-model-7" in lines[0] and "never as $0" in lines[0]


def test_cached_tokens_and_savings() -> None:
    price = Price(input=2.5, output=10.0, cache_read=1.25, cache_write=3.75)
    cost = compute_cost(price, input_tokens=1000, output_tokens=100, cache_read_tokens=400, cache_write_tokens=100)
    assert cost.input == pytest.approx(500 * 2.5 / 1e6)
    assert cost.cache_read == pytest.approx(400 * 1.25 / 1e6)
    assert cost.cache_write == pytest.approx(100 * 3.75 / 1e6)
    assert cost.output == pytest.approx(100 * 10 / 1e6)
    assert cost.savings == pytest.approx(400 * (2.5 - 1.25) / 1e6)


def test_cached_tokens_without_a_price_of_their_own_pay_the_input_price() -> None:
    cost = compute_cost(Price(input=2.0, output=8.0), 1000, 0, cache_read_tokens=600)
    assert cost.input == pytest.approx(1000 * 2.0 / 1e6)
    assert cost.cache_read == 0 and cost.savings == 0


def test_input_tokens_reported_without_the_cached_ones_are_read_as_such() -> None:
    # Anthropic's API reports input_tokens apart from cache reads
    price = Price(input=3.0, output=15.0, cache_read=0.3)
    apart = compute_cost(price, input_tokens=10, output_tokens=5, cache_read_tokens=1000)
    included = compute_cost(price, input_tokens=1010, output_tokens=5, cache_read_tokens=1000)
    assert apart == included


# ------------------------------------------------------------------ overrides

def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_override_wins_and_matches_globs(tmp_path: Path) -> None:
    path = write(tmp_path, "prices.yaml", """
prices:
  - {provider: openai, model: "ft:gpt-4o*", input: 3.75, output: 15, cache_read: 1.875}
  - {provider: "*", model: gpt-4o, input: 1, output: 2}
  - {provider: local, model: "llama-*", input: 0, output: 0}
""")
    book = PriceBook(load_overrides(path))
    fine_tuned = book.lookup("openai", "ft:gpt-4o-2024-08-06:acme::abc")
    assert (fine_tuned.input, fine_tuned.output, fine_tuned.cache_read) == (3.75, 15.0, 1.875)
    assert book.lookup("openai", "GPT-4o").input == 1.0  # overrides win over genai-prices; case-insensitive
    assert book.lookup("local", "llama-3-8b").input == 0.0  # a free model is priced at $0, not unpriced
    assert book.lookup("openai", "gpt-4o-mini").source.startswith("genai-prices")


def test_toml_override(tmp_path: Path) -> None:
    path = write(tmp_path, "prices.toml", """
[[prices]]
provider = "acme"
model = "acme-large"
input = 4.0
output = 12.5
cache_write = 5
""")
    price = PriceBook(load_overrides(path)).lookup("acme", "acme-large")
    assert (price.input, price.output, price.cache_read, price.cache_write) == (4.0, 12.5, None, 5.0)


def test_effective_dates_pick_the_latest_started_entry_and_expire_the_cache(tmp_path: Path) -> None:
    path = write(tmp_path, "prices.yaml", """
- {provider: acme, model: m1, input: 1, output: 1}
- {provider: acme, model: m1, input: 2, output: 2, effective_from: 2026-03-01}
- {provider: acme, model: m1, input: 3, output: 3, effective_from: "2026-06-01"}
""")
    now = [datetime(2026, 5, 31, 23, 59, tzinfo=UTC).timestamp()]
    book = PriceBook(load_overrides(path), clock=lambda: now[0])
    assert book.lookup("acme", "m1").input == 2.0
    now[0] = datetime(2026, 6, 1, 0, 0, 1, tzinfo=UTC).timestamp()  # the cached entry expires here
    assert book.lookup("acme", "m1").input == 3.0
    now[0] = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert PriceBook(load_overrides(path), clock=lambda: now[0]).lookup("acme", "m1").input == 1.0


def test_equal_effective_dates_the_first_entry_in_the_file_wins(tmp_path: Path) -> None:
    path = write(tmp_path, "prices.yaml", """
- {provider: acme, model: "m-*", input: 5, output: 5, effective_from: 2026-01-01}
- {provider: acme, model: m-1, input: 6, output: 6, effective_from: 2026-01-01}
- {provider: "*", model: "*", input: 9, output: 9}
""")
    now = datetime(2026, 2, 1, tzinfo=UTC).timestamp()
    book = PriceBook(load_overrides(path), clock=lambda: now)
    assert book.lookup("acme", "m-1").input == 5.0  # same date: the first in the file
    assert book.lookup("other", "anything").input == 9.0  # undated: since always, below any started date


def test_malformed_entries_give_one_line_each_and_the_rest_applies(tmp_path: Path) -> None:
    path = write(tmp_path, "prices.yaml", """
prices:
  - {provider: acme, model: good, input: 1, output: 2}
  - {provider: acme, model: neg, input: -1, output: 2}
  - {provider: acme, model: noout, input: 1}
  - {provider: acme, model: typo, input: 1, output: 2, cache_reed: 1}
  - {provider: acme, model: when, input: 1, output: 2, effective_from: soon}
  - just a string
  - {provider: acme, model: also-good, input: 0.5, output: 1}
""")
    overrides, lines = pricing.check_file(path)
    assert [o.model for o in overrides] == ["good", "also-good"]
    assert len(lines) == 5
    assert all(f"OTEL_DISTRO_AI_PRICES_FILE={path}" in line and "entry skipped" in line for line in lines)
    assert "entry 2 (acme/neg)" in lines[0] and "'input' must be a non-negative number" in lines[0]
    assert "entry 3 (acme/noout)" in lines[1] and "'output'" in lines[1]
    assert "cache_reed" in lines[2]
    assert "effective_from" in lines[3] and "entry 6" in lines[4]


def test_malformed_entries_are_logged_when_loaded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, "prices.yaml", "- {provider: acme, model: m, input: x, output: 1}\n")
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        assert load_overrides(path) == []
    assert len(caplog.records) == 1 and "entry 1 (acme/m)" in caplog.records[0].getMessage()


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("bad.yaml", "prices: [ {provider: a\n", "not valid YAML"),
    ("bad.toml", "[[prices]\n", "not valid TOML"),
    ("shape.yaml", "prices: 3\n", "expected a list"),
])
def test_unusable_file_gives_one_line_and_no_overrides(tmp_path: Path, name: str, text: str, expected: str) -> None:
    overrides, lines = pricing.check_file(write(tmp_path, name, text))
    assert overrides == [] and len(lines) == 1 and expected in lines[0] and name in lines[0]


def test_missing_file_gives_one_line(tmp_path: Path) -> None:
    overrides, lines = pricing.check_file(tmp_path / "absent.yaml")
    assert overrides == [] and len(lines) == 1 and "cannot read" in lines[0]


def test_effective_from_accepts_dates() -> None:
    (override,) = [pricing._parse_entry({"provider": "a", "model": "b", "input": 1, "output": 1,
                                         "effective_from": date(2026, 1, 2)}, "x#1")]
    assert override.effective_from == date(2026, 1, 2)
