"""Seam: whether an SDK histogram was created with advisory bucket boundaries.

Tested with opentelemetry-sdk 1.45.0 and 1.45.1. The distro's seconds-bucket View keeps an instrument's own
``explicit_bucket_boundaries_advisory`` and gives every other second-valued histogram the semantic-convention
boundaries. The SDK exposes the advice only as the private ``instrument._advisory``, read by the
aggregation's ``_create_aggregation(instrument, ...)``, which :class:`AdvisedOrDefaultBuckets` overrides. When
reading the advice fails, every such histogram gets the default boundaries (reported once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation

from otel_distro._sdk_private import FastPath


def _advised(instrument: Any) -> bool:
    advisory = instrument._advisory  # None when the instrument was created without advice
    return advisory is not None and advisory.explicit_bucket_boundaries is not None


def _not_known(instrument: Any) -> bool:
    return False


def new_guards() -> tuple[FastPath[bool]]:
    return (FastPath("advisory_buckets", _advised, _not_known),)


(HAS_ADVISED_BOUNDARIES,) = new_guards()


class AdvisedOrDefaultBuckets(ExplicitBucketHistogramAggregation):
    """The instrument's own advisory boundaries if it has some, else ``default``."""

    def __init__(self, default: Sequence[float]) -> None:
        super().__init__(default)
        self._default = tuple(default)

    def _create_aggregation(self, instrument: Any, *args: Any, **kwargs: Any) -> Any:
        advised = HAS_ADVISED_BOUNDARIES(instrument)
        chosen = ExplicitBucketHistogramAggregation(None if advised else self._default)
        return chosen._create_aggregation(instrument, *args, **kwargs)
