"""Business KPIs as OpenTelemetry metrics: declared once, in code or in a YAML file.

::

    from otel_distro import business
    campaigns = business.counter("campaigns.created", unit="{campaign}", attributes=["platform"])
    campaigns.add(1, platform="meta")

Each instrument allows only the attribute keys it declares (others are dropped,
one warning per key) and keeps at most ``max_values`` distinct values per key
(``OTEL_DISTRO_METRIC_ATTRIBUTE_VALUES``, default 100); later values are
recorded as ``other``, so a KPI can never explode the metric backend.

Counters, up-down counters and gauges are aggregated here and reported through
asynchronous instruments: an ``add`` is a dict update under a lock (well under
a microsecond) instead of the SDK's synchronous path (about 5 µs with SDK 1.45).
Histograms use the SDK histogram (with the declared ``buckets``).

The file (``OTEL_DISTRO_BUSINESS_METRICS_FILE``) is read at start-up::

    metrics:
      - name: campaigns.created
        kind: counter            # counter | up_down_counter | histogram | gauge
        unit: "{campaign}"
        description: Ad campaigns created
        attributes: [platform]
        max_values: 50           # optional
      - name: shop.cart.value
        kind: histogram
        unit: "{USD}"
        buckets: [5, 10, 25, 50, 100, 250]

and code fetches an instrument by name: ``business.get("campaigns.created")``,
or ``business.counter("campaigns.created")`` (same kind, returns the declared one).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from otel_distro._internal_errors import OnceWarnings, report_internal_error
from otel_distro.version import __version__

__all__ = ["Counter", "Gauge", "Histogram", "Registry", "UpDownCounter", "counter", "gauge", "get",
           "histogram", "up_down_counter"]

_log = logging.getLogger("otel_distro")

FILE_VARIABLE = "OTEL_DISTRO_BUSINESS_METRICS_FILE"
OTHER = "other"
DEFAULT_MAX_VALUES = 100
# The OpenTelemetry instrument-name syntax.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_./\-]{0,254}$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")
_KINDS = ("counter", "up_down_counter", "histogram", "gauge")


class MetricDeclarationError(ValueError):
    """A business metric declared with a bad name, key, unit or bucket list."""


def check_name(name: str) -> str:
    """The name if it follows the OpenTelemetry instrument-name rules, else a clear error."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise MetricDeclarationError(
            f"business metric name {name!r} is invalid: it must start with a letter, then letters, "
            "digits, '_', '.', '-' or '/', at most 255 characters (e.g. campaigns.created)")
    return name


def _check_keys(name: str, keys: Iterable[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(keys))
    for key in out:
        if not isinstance(key, str) or not _KEY.match(key):
            raise MetricDeclarationError(
                f"business metric {name!r}: attribute key {key!r} is invalid (letters, digits, '_', '.', '-')")
    return out


class _Instrument:
    """Attribute allow-list and value bounds shared by every kind."""

    kind = ""

    def __init__(self, name: str, unit: str, description: str, attributes: Sequence[str],
                 max_values: int) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self.attributes = _check_keys(name, attributes)
        self.max_values = max_values
        self._allowed = frozenset(self.attributes)
        self._seen: dict[str, set[Any]] = {k: set() for k in self.attributes}
        self._warnings = OnceWarnings(_log)
        self._lock = threading.Lock()
        # raw key (tuple of given values, None = absent) -> series key (values bounded)
        self._series: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        # series key -> its attribute dict
        self._attrs: dict[tuple[Any, ...], dict[str, Any]] = {}

    def _key(self, attributes: Mapping[str, Any] | None, kwargs: dict[str, Any]) -> tuple[Any, ...]:
        if attributes:
            kwargs = {**attributes, **kwargs}
        key = tuple(map(kwargs.get, self.attributes))
        if len(kwargs) != len(self.attributes) - key.count(None):
            self._drop_undeclared(kwargs)
        try:
            found = self._series.get(key)
        except TypeError:  # an unhashable value (a list ...): recorded as its text
            key = tuple(v if v is None or isinstance(v, str | bool | int | float) else str(v) for v in key)
            found = self._series.get(key)
        return found if found is not None else self._admit(key)

    def _number(self, value: Any) -> float | None:
        """The value as a number, or None (said once) when the caller passed something else."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        try:
            return float(value)  # Decimal, Fraction, numpy scalars
        except (TypeError, ValueError):
            self._warnings.warn(("_not_a_number",), "otel-distro: business metric %s: value %r is not a number; "
                                "ignored", self.name, value)
            return None

    def _drop_undeclared(self, given: Mapping[str, Any]) -> None:
        for extra in given:
            if extra not in self._allowed:
                self._warnings.warn(extra, "otel-distro: business metric %s: attribute %r is not declared "
                                    "(declared: %s); dropped", self.name, extra, ", ".join(self.attributes) or "none")

    def _admit(self, key: tuple[Any, ...]) -> tuple[Any, ...]:
        """A new raw key: bound each value; the series it lands in."""
        with self._lock:
            bounded = []
            for attr, value in zip(self.attributes, key, strict=True):
                if value is None:
                    bounded.append(None)
                    continue
                if not isinstance(value, str | bool | int | float):
                    value = str(value)
                seen = self._seen[attr]
                if value not in seen:
                    if len(seen) >= self.max_values:
                        self._warnings.warn(("_other", attr), "otel-distro: business metric %s: attribute %r "
                                            "has more than %d distinct values; further ones are recorded as %r",
                                            self.name, attr, self.max_values, OTHER)
                        value = OTHER
                    else:
                        seen.add(value)
                bounded.append(value)
            series = tuple(bounded)
            if series not in self._attrs:
                self._attrs[series] = {a: v for a, v in zip(self.attributes, series, strict=True)
                                       if v is not None}
            if series == key or len(self._series) < 10_000:  # overflowing raw keys: remembered up to a bound
                self._series[key] = series
            return series

    def _reset_after_fork(self) -> None:
        self._lock = threading.Lock()


class _Aggregated(_Instrument):
    """Values kept per series here; an observable instrument reports them."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._values: dict[tuple[Any, ...], float] = {}

    def _observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        attrs = self._attrs
        return [Observation(value, attrs[key]) for key, value in list(self._values.items())]

    def _reset_after_fork(self) -> None:
        super()._reset_after_fork()
        self._values.clear()


class Counter(_Aggregated):
    """A monotonic sum (``add`` with a non-negative amount)."""

    kind = "counter"

    def add(self, amount: float = 1, attributes: Mapping[str, Any] | None = None, /, **attrs: Any) -> None:
        """Add ``amount`` (>= 0) to the series named by the declared attributes."""
        try:
            amount = self._number(amount)
            if amount is None:
                return
            if amount < 0:
                self._negative(amount)
                return
            key = self._key(attributes, attrs)
            with self._lock:
                self._values[key] = self._values.get(key, 0) + amount
        except Exception as err:
            _failed(self.name, err)

    def _negative(self, amount: float) -> None:
        self._warnings.warn(("_negative",), "otel-distro: business counter %s: negative amount %r ignored "
                            "(use an up_down_counter)", self.name, amount)


class UpDownCounter(_Aggregated):
    """A sum that goes up and down (active customers, queue length)."""

    kind = "up_down_counter"

    def add(self, amount: float, attributes: Mapping[str, Any] | None = None, /, **attrs: Any) -> None:
        try:
            amount = self._number(amount)
            if amount is None:
                return
            key = self._key(attributes, attrs)
            with self._lock:
                self._values[key] = self._values.get(key, 0) + amount
        except Exception as err:
            _failed(self.name, err)


class Gauge(_Aggregated):
    """The last value set per series (ROAS, prediction accuracy)."""

    kind = "gauge"

    def set(self, value: float, attributes: Mapping[str, Any] | None = None, /, **attrs: Any) -> None:
        try:
            value = self._number(value)
            if value is None:
                return
            key = self._key(attributes, attrs)
            self._values[key] = value
        except Exception as err:
            _failed(self.name, err)


class Histogram(_Instrument):
    """A distribution (cart value, generation time), through the SDK histogram."""

    kind = "histogram"

    def __init__(self, name: str, unit: str, description: str, attributes: Sequence[str], max_values: int,
                 sdk: Any, buckets: Sequence[float] | None) -> None:
        super().__init__(name, unit, description, attributes, max_values)
        self._sdk = sdk
        self.buckets = tuple(buckets) if buckets else None

    def record(self, value: float, attributes: Mapping[str, Any] | None = None, /, **attrs: Any) -> None:
        try:
            value = self._number(value)
            if value is None:
                return
            key = self._key(attributes, attrs)
            self._sdk.record(value, self._attrs[key])
        except Exception as err:
            _failed(self.name, err)


Instrument = Counter | UpDownCounter | Histogram | Gauge


def _failed(name: str, err: Exception) -> None:
    report_internal_error(f"business.{name}", f"business metric {name}: recording failed; the value is dropped", err)


def _check_buckets(name: str, buckets: Sequence[float] | None) -> list[float] | None:
    if buckets is None:
        return None
    try:
        values = [float(b) for b in buckets]
    except (TypeError, ValueError):
        values = []
    if (not values or any(not math.isfinite(v) for v in values)
            or any(b <= a for a, b in itertools.pairwise(values))):
        raise MetricDeclarationError(f"business metric {name!r}: buckets must be a non-empty list of "
                                     f"increasing numbers, not {buckets!r}")
    return values


class Registry:
    """Business instruments of one MeterProvider (the global one for the module functions)."""

    def __init__(self, meter_provider: MeterProvider | None = None, max_values: int = DEFAULT_MAX_VALUES) -> None:
        self._provider = meter_provider
        self._meter: Any = None
        self.max_values = max_values
        self._instruments: dict[str, Instrument] = {}
        self._lock = threading.RLock()

    def _get_meter(self) -> Any:
        if self._meter is None:
            provider = self._provider or metrics.get_meter_provider()
            self._meter = provider.get_meter("otel_distro.business", __version__)
        return self._meter

    def _existing(self, name: str, kind: str) -> Instrument | None:
        found = self._instruments.get(name)
        if found is not None and found.kind != kind:
            raise MetricDeclarationError(f"business metric {name!r} is already declared as a {found.kind}, "
                                         f"not a {kind}")
        return found

    def counter(self, name: str, unit: str = "1", description: str = "", attributes: Sequence[str] = (),
                max_values: int | None = None) -> Counter:
        """A counter; the same name again returns the same counter (e.g. one declared in the file)."""
        with self._lock:
            found = self._existing(check_name(name), "counter")
            if found is not None:
                return found  # type: ignore[return-value]
            made = Counter(name, unit, description, attributes, max_values or self.max_values)
            self._get_meter().create_observable_counter(name, callbacks=[made._observe], unit=unit,
                                                        description=description)
            return self._keep(made)

    def up_down_counter(self, name: str, unit: str = "1", description: str = "",
                        attributes: Sequence[str] = (), max_values: int | None = None) -> UpDownCounter:
        with self._lock:
            found = self._existing(check_name(name), "up_down_counter")
            if found is not None:
                return found  # type: ignore[return-value]
            made = UpDownCounter(name, unit, description, attributes, max_values or self.max_values)
            self._get_meter().create_observable_up_down_counter(name, callbacks=[made._observe], unit=unit,
                                                                description=description)
            return self._keep(made)

    def gauge(self, name: str, unit: str = "1", description: str = "", attributes: Sequence[str] = (),
              max_values: int | None = None) -> Gauge:
        with self._lock:
            found = self._existing(check_name(name), "gauge")
            if found is not None:
                return found  # type: ignore[return-value]
            made = Gauge(name, unit, description, attributes, max_values or self.max_values)
            self._get_meter().create_observable_gauge(name, callbacks=[made._observe], unit=unit,
                                                      description=description)
            return self._keep(made)

    def histogram(self, name: str, unit: str = "1", description: str = "", attributes: Sequence[str] = (),
                  buckets: Sequence[float] | None = None, max_values: int | None = None) -> Histogram:
        with self._lock:
            found = self._existing(check_name(name), "histogram")
            if found is not None:
                return found  # type: ignore[return-value]
            bounds = _check_buckets(name, buckets)
            _check_keys(name, attributes)
            extra = {"explicit_bucket_boundaries_advisory": bounds} if bounds else {}
            sdk = self._get_meter().create_histogram(name, unit=unit, description=description, **extra)
            made = Histogram(name, unit, description, attributes, max_values or self.max_values, sdk, bounds)
            return self._keep(made)

    def _keep(self, instrument: Any) -> Any:
        self._instruments[instrument.name] = instrument
        return instrument

    def get(self, name: str) -> Instrument:
        """A declared instrument by name; KeyError names the declared ones."""
        try:
            return self._instruments[name]
        except KeyError:
            known = ", ".join(sorted(self._instruments)) or "none"
            raise KeyError(f"no business metric {name!r} declared (declared: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._instruments)

    def load_file(self, path: str | Path) -> list[str]:
        """Declare the file's metrics; a bad entry is reported on one line and skipped. Returns the names."""
        where = f"{FILE_VARIABLE}={path}"
        try:
            import yaml

            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as err:
            _log.warning("otel-distro: %s: cannot read the file (%s); no business metrics declared",
                         where, err.strerror or err)
            return []
        except Exception as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            _log.warning("otel-distro: %s: not valid YAML (%s); no business metrics declared", where, first)
            return []
        entries = data.get("metrics") if isinstance(data, Mapping) else data
        if not isinstance(entries, list):
            _log.warning("otel-distro: %s: expected a 'metrics' list; no business metrics declared", where)
            return []
        declared = []
        for number, entry in enumerate(entries, start=1):
            label = f"entry {number}"
            if isinstance(entry, Mapping) and entry.get("name"):
                label += f" ({entry.get('name')})"
            try:
                declared.append(self._declare(entry))
            except (MetricDeclarationError, TypeError, ValueError) as err:
                _log.warning("otel-distro: %s: %s: %s; entry skipped", where, label, err)
        return declared

    _ENTRY_KEYS = frozenset({"name", "kind", "unit", "description", "attributes", "buckets", "max_values"})

    def _declare(self, entry: Any) -> str:
        if not isinstance(entry, Mapping):
            raise MetricDeclarationError("an entry must be a mapping with name and kind")
        unknown = sorted(set(entry) - self._ENTRY_KEYS)
        if unknown:
            raise MetricDeclarationError(f"unknown key(s) {', '.join(map(str, unknown))}; accepted: "
                                         + ", ".join(sorted(self._ENTRY_KEYS)))
        name = check_name(entry.get("name"))  # type: ignore[arg-type]
        kind = entry.get("kind")
        if kind not in _KINDS:
            raise MetricDeclarationError(f"kind must be one of {', '.join(_KINDS)}, not {kind!r}")
        unit = entry.get("unit", "1")
        description = entry.get("description", "")
        if not isinstance(unit, str) or not isinstance(description, str):
            raise MetricDeclarationError("unit and description must be strings")
        attributes = entry.get("attributes") or []
        if not isinstance(attributes, list):
            raise MetricDeclarationError("attributes must be a list of keys")
        max_values = entry.get("max_values")
        if max_values is not None and (isinstance(max_values, bool) or not isinstance(max_values, int)
                                       or max_values < 1):
            raise MetricDeclarationError(f"max_values must be a positive integer, not {max_values!r}")
        if kind != "histogram" and entry.get("buckets") is not None:
            raise MetricDeclarationError("buckets are for histograms only")
        if name in self._instruments:
            raise MetricDeclarationError("declared twice")
        if kind == "histogram":
            self.histogram(name, unit, description, attributes, entry.get("buckets"), max_values)
        else:
            getattr(self, kind)(name, unit, description, attributes, max_values)
        return name

    def _after_fork(self) -> None:
        for instrument in list(self._instruments.values()):
            instrument._reset_after_fork()


def _configured_max_values() -> int:
    """The running configuration's bound: configure() imports this module only when it needs it."""
    configurator = sys.modules.get("otel_distro.configurator")
    telemetry = configurator.current() if configurator is not None else None
    return telemetry.settings.metric_attribute_value_limit if telemetry is not None else DEFAULT_MAX_VALUES


_registry = Registry(max_values=_configured_max_values())


def _reset_in_child() -> None:
    _registry._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)


def install(max_values: int, path: str | None) -> list[str]:
    """Called by configure(): the value bound and the metrics file of the settings."""
    _registry.max_values = max_values
    return _registry.load_file(path) if path else []


def counter(name: str, unit: str = "1", description: str = "", attributes: Sequence[str] = (),
            max_values: int | None = None) -> Counter:
    """A business counter on the global MeterProvider (``add(amount, **attributes)``)."""
    return _registry.counter(name, unit, description, attributes, max_values)


def up_down_counter(name: str, unit: str = "1", description: str = "", attributes: Sequence[str] = (),
                    max_values: int | None = None) -> UpDownCounter:
    """A business up-down counter (``add(+/-amount, **attributes)``)."""
    return _registry.up_down_counter(name, unit, description, attributes, max_values)


def histogram(name: str, unit: str = "1", description: str = "", attributes: Sequence[str] = (),
              buckets: Sequence[float] | None = None, max_values: int | None = None) -> Histogram:
    """A business histogram (``record(value, **attributes)``); ``buckets`` are its boundaries."""
    return _registry.histogram(name, unit, description, attributes, buckets, max_values)


def gauge(name: str, unit: str = "1", description: str = "", attributes: Sequence[str] = (),
          max_values: int | None = None) -> Gauge:
    """A business gauge (``set(value, **attributes)``): the last value per series."""
    return _registry.gauge(name, unit, description, attributes, max_values)


def get(name: str) -> Instrument:
    """An instrument declared in code or in the file, by name."""
    return _registry.get(name)
