"""Prices of LLM calls: genai-prices' bundled data (offline) plus an override file.

The price of one (provider, model) pair is resolved once and cached, so that
pricing a call is a few float multiplications, not genai-prices' ~55 µs
calculation. Entries expire when a price can change: at the next effective
date of an override, every minute for genai-prices' date- or time-dependent
prices, and all at once when genai-prices swaps in updated data (update URL).

Token counts follow the semantic conventions and genai-prices: ``input_tokens``
includes the cached ones (read and written).
"""

from __future__ import annotations

import fnmatch
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from otel_distro._internal_errors import OnceWarnings, report_internal_error
from otel_distro.ai import semconv

_log = logging.getLogger("otel_distro")

FILE_VARIABLE = "OTEL_DISTRO_AI_PRICES_FILE"
_REFRESH_S = 60.0  # re-resolve date/time-dependent prices this often
_NEVER = math.inf

# A price per million tokens, or tiers: ((threshold, price), ...) highest threshold
# first; a tier applies to all tokens of the call once the call's total input
# tokens exceed its threshold (genai-prices' and the providers' "cliff" model).
Tiers = tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class Price:
    """USD per million tokens of one (provider, model); None: not priced on its own.

    Cached tokens without a price of their own are charged at the input price.
    """

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None
    per_request: float = 0.0
    input_tiers: Tiers = ()
    output_tiers: Tiers = ()
    cache_read_tiers: Tiers = ()
    cache_write_tiers: Tiers = ()
    source: str = "genai-prices"


@dataclass(frozen=True)
class Cost:
    """The cost of one call in USD, by token type; ``savings`` is what cache reads saved."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    savings: float

    @property
    def total(self) -> float:
        return self.input + self.output + self.cache_read + self.cache_write


def _rate(base: float, tiers: Tiers, total_input: int) -> float:
    for start, price in tiers:
        if total_input > start:
            return price
    return base


def compute_cost(price: Price, input_tokens: int, output_tokens: int,
                 cache_read_tokens: int = 0, cache_write_tokens: int = 0) -> Cost:
    """The cost of one call, as genai-prices computes it, split by token type.

    ``input_tokens`` includes cached tokens. A report whose cached tokens exceed
    ``input_tokens`` (Anthropic's API counts them apart) is read as excluding them.
    """
    if cache_read_tokens + cache_write_tokens > input_tokens:
        input_tokens += cache_read_tokens + cache_write_tokens
    total_input = input_tokens
    uncached = input_tokens
    input_rate = _rate(price.input, price.input_tiers, total_input) if price.input_tiers else price.input
    cache_read_cost = cache_write_cost = savings = 0.0
    if price.cache_read is not None:
        uncached -= cache_read_tokens
        read_rate = (_rate(price.cache_read, price.cache_read_tiers, total_input)
                     if price.cache_read_tiers else price.cache_read)
        cache_read_cost = cache_read_tokens * read_rate / 1e6
        if input_rate > read_rate:
            savings = cache_read_tokens * (input_rate - read_rate) / 1e6
    if price.cache_write is not None:
        uncached -= cache_write_tokens
        write_rate = (_rate(price.cache_write, price.cache_write_tiers, total_input)
                      if price.cache_write_tiers else price.cache_write)
        cache_write_cost = cache_write_tokens * write_rate / 1e6
    output_rate = _rate(price.output, price.output_tiers, total_input) if price.output_tiers else price.output
    return Cost(input=uncached * input_rate / 1e6 + price.per_request,
                output=output_tokens * output_rate / 1e6,
                cache_read=cache_read_cost, cache_write=cache_write_cost, savings=savings)


# ------------------------------------------------------------------ overrides

@dataclass(frozen=True)
class Override:
    """One entry of the override file: a (provider, model) glob pair and its prices."""

    provider: str
    model: str
    price: Price
    effective_from: date | None = None

    def matches(self, provider: str, model: str) -> bool:
        return fnmatch.fnmatchcase(provider, self.provider) and fnmatch.fnmatchcase(model, self.model)


class OverrideError(ValueError):
    pass


_PRICE_KEYS = ("input", "output", "cache_read", "cache_write")
_ENTRY_KEYS = frozenset({"provider", "model", "effective_from", *_PRICE_KEYS})


def _number(entry: Mapping[str, Any], key: str, required: bool) -> float | None:
    value = entry.get(key)
    if value is None:
        if required:
            raise OverrideError(f"'{key}' (USD per million tokens) is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise OverrideError(f"'{key}' must be a non-negative number of USD per million tokens, not {value!r}")
    return float(value)


def _parse_entry(entry: Any, origin: str) -> Override:
    if not isinstance(entry, Mapping):
        raise OverrideError("an entry must be a mapping with provider, model, input, output")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise OverrideError(f"unknown key(s) {', '.join(map(str, unknown))}; accepted: "
                            + ", ".join(sorted(_ENTRY_KEYS)))
    provider, model = entry.get("provider"), entry.get("model")
    for key, value in (("provider", provider), ("model", model)):
        if not isinstance(value, str) or not value.strip():
            raise OverrideError(f"'{key}' must be a non-empty string (globs like gpt-4o* allowed)")
    effective = entry.get("effective_from")
    if isinstance(effective, datetime):
        effective = effective.date()
    elif isinstance(effective, str):
        try:
            effective = date.fromisoformat(effective.strip())
        except ValueError:
            raise OverrideError(f"'effective_from' must be a date like 2026-01-31, not {effective!r}") from None
    elif effective is not None and not isinstance(effective, date):
        raise OverrideError(f"'effective_from' must be a date like 2026-01-31, not {effective!r}")
    price = Price(input=_number(entry, "input", True) or 0.0, output=_number(entry, "output", True) or 0.0,
                  cache_read=_number(entry, "cache_read", False),
                  cache_write=_number(entry, "cache_write", False), source=origin)
    return Override(provider.strip().lower(), model.strip().lower(), price, effective)


def load_overrides(path: str | Path, report: Callable[[str], None] | None = None) -> list[Override]:
    """Read a YAML or TOML override file; each bad entry is reported on one line and skipped.

    Either a list of entries or a mapping with a ``prices`` list. An entry:
    ``provider``, ``model`` (globs), ``input``, ``output``, optional ``cache_read``,
    ``cache_write`` (USD per million tokens) and ``effective_from`` (a date).
    """
    say = report or (lambda line: _log.warning("%s", line))
    where = f"{FILE_VARIABLE}={path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        say(f"otel-distro: {where}: cannot read the file ({err.strerror or err}); no price overrides")
        return []
    try:
        if str(path).lower().endswith(".toml"):
            import tomllib

            data: Any = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        say(f"otel-distro: {where}: not valid {'TOML' if str(path).endswith('.toml') else 'YAML'} "
            f"({first}); no price overrides")
        return []
    entries = data.get("prices") if isinstance(data, Mapping) else data
    if data is None:
        entries = []
    if not isinstance(entries, list):
        say(f"otel-distro: {where}: expected a list of price entries (or a 'prices' list); no price overrides")
        return []
    overrides = []
    for number, entry in enumerate(entries, start=1):
        label = f"entry {number}"
        if isinstance(entry, Mapping) and entry.get("model"):
            label += f" ({entry.get('provider')}/{entry.get('model')})"
        try:
            overrides.append(_parse_entry(entry, f"{path}#{number}"))
        except OverrideError as err:
            say(f"otel-distro: {where}: {label}: {err}; entry skipped")
    return overrides


# ------------------------------------------------------------- genai-prices

def _unit(model_price: Any, key: str) -> tuple[float | None, Tiers]:
    from genai_prices.types import TieredPrices

    value = getattr(model_price, key, None)
    if value is None:
        return None, ()
    if isinstance(value, TieredPrices):
        tiers = tuple((t.start, float(t.price)) for t in sorted(value.tiers, key=lambda t: -t.start))
        return float(value.base), tiers
    return float(value), ()


def _from_genai_prices(model_price: Any, source: str) -> Price:
    input_, input_tiers = _unit(model_price, "input_mtok")
    output, output_tiers = _unit(model_price, "output_mtok")
    read, read_tiers = _unit(model_price, "cache_read_mtok")
    write, write_tiers = _unit(model_price, "cache_write_mtok")
    per_k_requests = getattr(model_price, "requests_kcount", None)
    return Price(input=input_ or 0.0, output=output or 0.0, cache_read=read, cache_write=write,
                 per_request=float(per_k_requests) / 1000 if per_k_requests else 0.0,
                 input_tiers=input_tiers, output_tiers=output_tiers, cache_read_tiers=read_tiers,
                 cache_write_tiers=write_tiers, source=source)


def genai_prices_lookup(provider: str, model: str, now: datetime) -> tuple[Price | None, float]:
    """genai-prices' price for the pair at ``now``, and until when it holds (epoch seconds)."""
    from genai_prices import data_snapshot, types

    snapshot = data_snapshot.get_snapshot()
    provider_id = semconv.PROVIDER_IDS.get(provider, provider)
    try:
        found_provider, model_info = snapshot.find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None, _NEVER
    model_price = model_info.get_prices(now)
    expires = _NEVER if isinstance(model_info.prices, types.ModelPrice) else now.timestamp() + _REFRESH_S
    if snapshot.from_auto_update:
        expires = min(expires, now.timestamp() + _REFRESH_S)
    return _from_genai_prices(model_price, f"genai-prices:{found_provider.id}/{model_info.id}"), expires


# ------------------------------------------------------------------ the book

class PriceBook:
    """Resolves and caches the price of (provider, model) pairs; overrides win."""

    def __init__(self, overrides: Sequence[Override] = (), *, genai_prices: bool = True,
                 clock: Callable[[], float] = time.time, follow_updates: bool = False) -> None:
        self._overrides = list(overrides)
        self._genai_prices = genai_prices
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[Price | None, float]] = {}
        self._lock = threading.Lock()
        self._unpriced = OnceWarnings(_log)
        # With OTEL_DISTRO_AI_PRICES_UPDATE_URL, genai-prices swaps in a new snapshot when a
        # fetch succeeds: the cache is dropped then, so prices resolved earlier do not stay stale.
        self._follow_updates = follow_updates and genai_prices
        self._snapshot: Any = None
        self._get_snapshot: Callable[[], Any] | None = None

    @property
    def overrides(self) -> list[Override]:
        return list(self._overrides)

    def lookup(self, provider: str, model: str) -> Price | None:
        """The price of one call's model, or None when neither source knows it."""
        key = (provider, model)
        if self._follow_updates:
            self._check_snapshot()
        hit = self._cache.get(key)
        if hit is not None and hit[1] > self._clock():
            return hit[0]
        return self._resolve(key)

    def _check_snapshot(self) -> None:
        get_snapshot = self._get_snapshot
        if get_snapshot is None:
            from genai_prices import data_snapshot

            get_snapshot = self._get_snapshot = data_snapshot.get_snapshot
        snapshot = get_snapshot()
        if snapshot is not self._snapshot:
            with self._lock:
                self._snapshot = snapshot
                self._cache.clear()

    def _resolve(self, key: tuple[str, str]) -> Price | None:
        provider, model = key[0].strip().lower(), key[1].strip().lower()
        now_ts = self._clock()
        now = datetime.fromtimestamp(now_ts, UTC)
        price, expires = self._from_overrides(provider, model, now)
        if price is None and self._genai_prices:
            try:
                price, from_data = genai_prices_lookup(provider, model, now)
                expires = min(expires, from_data)
            except Exception as err:  # a broken data snapshot must not break the host
                price, expires = None, now_ts + _REFRESH_S
                report_internal_error("ai.genai_prices_lookup",
                                      f"genai-prices lookup failed for {provider}/{model}; the call is unpriced", err)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (price, expires)
        if price is None:
            self._unpriced.warn(key, "otel-distro: no price for LLM model %s/%s (not in genai-prices, no entry in %s); "
                                "its calls are counted in gen_ai.client.unpriced_calls, never as $0",
                                key[0], key[1], FILE_VARIABLE)
        return price

    def _from_overrides(self, provider: str, model: str, now: datetime) -> tuple[Price | None, float]:
        today = now.date()
        best: Override | None = None
        next_change = _NEVER
        for override in self._overrides:
            if not override.matches(provider, model):
                continue
            start = override.effective_from
            if start is not None and start > today:
                next_change = min(next_change, datetime(start.year, start.month, start.day,
                                                        tzinfo=UTC).timestamp())
                continue
            if best is None or (start or date.min) > (best.effective_from or date.min):
                best = override
        return (best.price if best else None), next_change


def check_file(path: str | Path) -> tuple[list[Override], list[str]]:
    """The valid entries of an override file and one line per problem (for doctor and tests)."""
    lines: list[str] = []
    return load_overrides(path, report=lines.append), lines


