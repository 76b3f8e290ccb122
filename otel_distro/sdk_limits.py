"""Whether the SDK's attribute checks would keep a mapping exactly as it is.

The distro's fast paths (the SERVER span's attributes, log records queued
by the bridge) hand attributes over without the SDK's per-value cleaning;
they may only when that cleaning would change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_SCALARS = frozenset((str, bool, int, float))


def kept_as_is(attributes: Mapping[str, Any], max_count: int | None, max_length: int | None,
               already: int = 0) -> bool:
    """Scalars only, no more than ``max_count`` with the ``already`` present, no string over ``max_length``."""
    if max_count is not None and len(attributes) + already > max_count:
        return False
    for value in attributes.values():
        if type(value) not in _SCALARS or (max_length is not None and type(value) is str
                                           and len(value) > max_length):
            return False
    return True
