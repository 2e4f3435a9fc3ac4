"""The arithmetic behind A/B subjects and canary holds, kept apart so it can be checked on its own."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Comparison:
    """Two rates compared with a two-sided two-proportion z-test."""

    rate_a: float
    rate_b: float
    p_value: float

    @property
    def significant(self) -> bool:
        """At the 5 % level: below it, the editor is told plainly that the difference may be chance."""
        return self.p_value < 0.05


def rate(successes: int, trials: int) -> float:
    return successes / trials if trials else 0.0


def two_proportion_test(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> Comparison:
    """Pooled two-proportion z-test. With no trials, or no variation at all, nothing is significant (p = 1)."""
    rate_a, rate_b = rate(successes_a, trials_a), rate(successes_b, trials_b)
    if not trials_a or not trials_b:
        return Comparison(rate_a, rate_b, 1.0)
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    variance = pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b)
    if variance <= 0:
        return Comparison(rate_a, rate_b, 1.0)
    z = (rate_a - rate_b) / math.sqrt(variance)
    return Comparison(rate_a, rate_b, math.erfc(abs(z) / math.sqrt(2)))
