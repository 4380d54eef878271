"""A small streaming quantile sketch with bounded relative error.

Values go into logarithmic buckets (DDSketch's idea): bucket ``i`` holds
values in ``(gamma**(i-1), gamma**i]``, so any quantile is off by at most
``(gamma - 1) / (gamma + 1)`` relative error (1% here) whatever the
distribution, in memory proportional to the log of the value range.
"""

from __future__ import annotations

import math

_GAMMA = 1.02
_LOG_GAMMA = math.log(_GAMMA)
_MIN = 1e-6  # runtimes below a microsecond count as a microsecond


class QuantileSketch:
    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0.0

    def add(self, value: float) -> None:
        if value < _MIN:
            value = _MIN
        key = math.ceil(math.log(value) / _LOG_GAMMA)
        buckets = self.buckets
        buckets[key] = buckets.get(key, 0) + 1
        self.count += 1
        self.total += value

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` (0..1), or None when empty."""
        if not self.count:
            return None
        rank = q * (self.count - 1)
        seen = 0
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen > rank:
                # The bucket's midpoint in relative terms.
                return 2 * _GAMMA**key / (_GAMMA + 1)
        return 2 * _GAMMA ** max(self.buckets) / (_GAMMA + 1)  # pragma: no cover
