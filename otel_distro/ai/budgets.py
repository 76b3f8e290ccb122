"""LLM spend budgets: USD per day or month, by cost attribute and model, from a file.

A budget file (``OTEL_DISTRO_AI_BUDGETS_FILE``, YAML or TOML)::

    budgets:
      - name: acme-daily
        period: day            # day or month (UTC calendar)
        limit_usd: 50
        match:                 # all must hold; values are globs
          tenant: acme         # a key of OTEL_DISTRO_AI_COST_ATTRIBUTES (baggage)
          gen_ai.request.model: "gpt-4o*"

``match`` keys are allow-listed: the cost attributes, ``gen_ai.provider.name``,
``gen_ai.request.model`` and ``gen_ai.agent.name``; no match: every call counts.
Each priced call adds its cost to every budget it matches. Exported:
``gen_ai.budget.spend`` (counter, USD spent since the process started, by
``budget`` and ``period``) and ``gen_ai.budget.limit`` (gauge, USD); the rules
in ``collector/prometheus/rules/genai_budgets.yml`` compare their sum over the
fleet with the limit. In process, :func:`otel_distro.ai.on_budget_crossed`
callbacks run once per budget and period when this process's own spend in the
period passes the limit (it does not know other processes' spend).
"""

from __future__ import annotations

import calendar
import fnmatch
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from otel_distro.ai import semconv

_log = logging.getLogger("otel_distro")

FILE_VARIABLE = "OTEL_DISTRO_AI_BUDGETS_FILE"
BUILT_IN_KEYS = (semconv.PROVIDER_NAME, semconv.REQUEST_MODEL, semconv.AGENT_NAME)
PERIODS = ("day", "month")
_ENTRY_KEYS = frozenset({"name", "period", "limit_usd", "match"})


@dataclass(frozen=True)
class Budget:
    name: str
    period: str
    limit_usd: float
    match: tuple[tuple[str, str], ...] = ()

    def matches(self, values: Mapping[str, Any]) -> bool:
        for key, pattern in self.match:
            value = values.get(key)
            if value is None:
                return False
            if value != pattern and not (_is_glob(pattern) and fnmatch.fnmatchcase(str(value), pattern)):
                return False
        return True


def _is_glob(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern or "[" in pattern


@dataclass(frozen=True)
class BudgetCrossed:
    """What a callback receives: the budget, the period it was crossed in, this process's spend in it."""

    budget: Budget
    period_start: datetime
    spent_usd: float


class BudgetError(ValueError):
    pass


def _parse(entry: Any, allowed: Sequence[str]) -> Budget:
    if not isinstance(entry, Mapping):
        raise BudgetError("an entry must be a mapping with name, period, limit_usd and optional match")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise BudgetError(f"unknown key(s) {', '.join(map(str, unknown))}; accepted: " + ", ".join(sorted(_ENTRY_KEYS)))
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BudgetError("'name' must be a non-empty string")
    period = entry.get("period")
    if period not in PERIODS:
        raise BudgetError(f"'period' must be one of {', '.join(PERIODS)}, not {period!r}")
    limit = entry.get("limit_usd")
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not math.isfinite(limit) or limit <= 0:
        raise BudgetError(f"'limit_usd' must be a positive number of US dollars, not {limit!r}")
    match = entry.get("match") or {}
    if not isinstance(match, Mapping):
        raise BudgetError("'match' must be a mapping of attribute to value (globs allowed)")
    refused = sorted(k for k in match if k not in allowed)
    if refused:
        raise BudgetError(f"match key(s) {', '.join(map(str, refused))} not allowed; allowed: " + ", ".join(allowed)
                          + " (add baggage keys to OTEL_DISTRO_AI_COST_ATTRIBUTES)")
    return Budget(name.strip(), period, float(limit), tuple((str(k), str(v)) for k, v in match.items()))


def load(path: str | Path, cost_attributes: Sequence[str],
         report: Callable[[str], None] | None = None) -> list[Budget]:
    """The valid budgets of a file; each problem is reported on one line naming the file and the entry."""
    say = report or (lambda line: _log.warning("%s", line))
    where = f"{FILE_VARIABLE}={path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
        if str(path).lower().endswith(".toml"):
            import tomllib

            data: Any = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        say(f"otel-distro: {where}: cannot read the budgets ({first}); no budgets")
        return []
    entries = data.get("budgets") if isinstance(data, Mapping) else data
    if not isinstance(entries, list):
        say(f"otel-distro: {where}: expected a 'budgets' list; no budgets")
        return []
    allowed = tuple(dict.fromkeys((*cost_attributes, *BUILT_IN_KEYS)))
    budgets: list[Budget] = []
    for number, entry in enumerate(entries, start=1):
        try:
            budget = _parse(entry, allowed)
            if any(b.name == budget.name for b in budgets):
                raise BudgetError(f"the name {budget.name!r} is used twice")
            budgets.append(budget)
        except BudgetError as err:
            label = f"entry {number}" + (f" ({entry.get('name')})" if isinstance(entry, Mapping) else "")
            say(f"otel-distro: {where}: {label}: {err}; budget skipped")
    return budgets


def _period_bounds(period: str, now: float) -> tuple[float, float]:
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start = day
        return start.timestamp(), start.timestamp() + 86_400
    start = day.replace(day=1)
    days = calendar.monthrange(start.year, start.month)[1]
    return start.timestamp(), start.timestamp() + days * 86_400


class _Tally:
    __slots__ = ("budget", "crossed", "period_end", "period_spend", "period_start", "total")

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.total = 0.0
        self.period_spend = 0.0
        self.period_start = self.period_end = 0.0
        self.crossed = False


class BudgetBook:
    """Adds each priced call to the budgets it matches; calls the callbacks once per budget and period."""

    def __init__(self, budgets: Sequence[Budget], callbacks: list[Callable[[BudgetCrossed], Any]] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._tallies = [_Tally(b) for b in budgets]
        self._clock = clock
        self._callbacks = callbacks if callbacks is not None else []
        self._lock = threading.Lock()

    @property
    def budgets(self) -> list[Budget]:
        return [t.budget for t in self._tallies]

    def add(self, cost: float, values: Mapping[str, Any]) -> None:
        crossed = []
        now = self._clock()
        with self._lock:
            for tally in self._tallies:
                if not tally.budget.matches(values):
                    continue
                if now >= tally.period_end:
                    tally.period_start, tally.period_end = _period_bounds(tally.budget.period, now)
                    tally.period_spend, tally.crossed = 0.0, False
                tally.total += cost
                tally.period_spend += cost
                if not tally.crossed and tally.period_spend > tally.budget.limit_usd:
                    tally.crossed = True
                    crossed.append(BudgetCrossed(tally.budget, datetime.fromtimestamp(tally.period_start, UTC),
                                                 tally.period_spend))
        for event in crossed:
            self._notify(event)

    def _notify(self, event: BudgetCrossed) -> None:
        # Off the caller's thread: a slow callback must not hold up the request that crossed the budget.
        for callback in list(self._callbacks):
            threading.Thread(target=self._call, args=(callback, event), name="otel-distro-budget",
                             daemon=True).start()

    @staticmethod
    def _call(callback: Callable[[BudgetCrossed], Any], event: BudgetCrossed) -> None:
        try:
            callback(event)
        except Exception as err:
            _log.warning("otel-distro: budget callback %r failed for budget %s: %s: %s",
                         getattr(callback, "__name__", callback), event.budget.name, type(err).__name__, err)

    def spend(self) -> list[tuple[Budget, float]]:
        """USD spent on each budget since the process started (the exported counter)."""
        with self._lock:
            return [(t.budget, t.total) for t in self._tallies]
