"""Interleaved rounds: every compared row is measured in turn, so load hits them all alike.

This 2-core machine is shared: a row measured a minute after another may see a different machine.
So rows that are compared are never run one after another. :func:`interleave` takes one sample of
row A, then B, then C, and repeats that for a number of rounds; :func:`summary` reports a row's
median with its spread (the smallest and largest sample), and :func:`ratio` divides two rows round
by round and reports the median of those ratios, so that a slow moment hits both sides of a ratio.
Each row runs as many operations per sample as fit in a time budget (:func:`per_op_us`), so a run
takes a known time whatever a row costs.

It measures nothing itself and asserts no number: targets are compared in the README.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

#: One measurement of a row (µs per operation, requests per second...).
Sample = Callable[[], float]
Stat = dict[str, float]
#: The most operations one sample runs (a row this fast is timed well within its budget).
MAX_OPS = 1 << 22


def per_op_us(run: Callable[[int], None], budget: float) -> Sample:
    """A sample function: µs per operation of one ``run(ops)`` taking about ``budget`` seconds.

    Its first call (the warm-up :func:`interleave` discards) finds ``ops``: it runs 2, 8, 32...
    operations until a run takes a quarter of the budget, and scales up from there. ``ops`` is
    even, so a disable/enable row always ends where it started.
    """
    chosen = [0]

    def timed(ops: int) -> float:
        start = time.perf_counter()
        run(ops)
        return time.perf_counter() - start

    def sample() -> float:
        if chosen[0]:
            return timed(chosen[0]) / chosen[0] * 1e6
        ops, elapsed = 2, 0.0
        while ops < MAX_OPS and (elapsed := timed(ops)) < budget / 4:
            ops *= 4
        chosen[0] = max(2, 2 * round(ops * budget / max(elapsed, 1e-9) / 2))
        return elapsed / ops * 1e6

    return sample


def interleave(
    rows: Mapping[str, Sample], rounds: int, *, warm: bool = True
) -> dict[str, list[float]]:
    """Each row's samples: a warm-up call per row (if ``warm``), then A, B, C... repeated."""
    for sample in rows.values() if warm else ():
        sample()
    samples: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(rounds):
        for name, sample in rows.items():
            samples[name].append(sample())
    return samples


def interleave_ops(
    runs: Mapping[str, Callable[[int], None]], budget: float, rounds: int
) -> dict[str, list[float]]:
    """µs per operation of each ``run(ops)``: :func:`per_op_us` samples, :func:`interleave`d."""
    return interleave({name: per_op_us(run, budget) for name, run in runs.items()}, rounds)


def summary(values: list[float]) -> Stat:
    """The median of ``values`` and their spread (smallest and largest)."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def ratio(numerator: list[float], denominator: list[float]) -> Stat:
    """``numerator ÷ denominator`` taken round by round, summarised as :func:`summary` does."""
    return summary([n / d for n, d in zip(numerator, denominator, strict=True) if d > 0] or [0.0])


def section(
    samples: dict[str, list[float]], ratios: Mapping[str, tuple[str, str]], unit: str
) -> dict[str, object]:
    """A section's results: each row's summary in ``unit``, and each named ratio of two rows."""
    return {
        "unit": unit,
        "rounds": len(next(iter(samples.values()), [])),
        "rows": {name: summary(values) for name, values in samples.items()},
        "ratios": {
            label: ratio(samples[top], samples[bottom]) for label, (top, bottom) in ratios.items()
        },
    }
