"""The one way every benchmark times: warm-up calls, then repeated timed calls, reported by the median.

Cases compared with each other (ninx and its reference) are timed *alternately* in one loop — ninx, ref,
ninx, ref, … — so that a slow spell of the machine hits both, not just whichever ran second.
"""
import gc
import statistics
import time
from typing import NamedTuple


class Timing(NamedTuple):
    """Seconds of each timed call, in order."""
    times: tuple

    @property
    def median(self):
        return statistics.median(self.times)

    @property
    def best(self):
        return min(self.times)

    def as_dict(self):
        return {"median_s": self.median, "best_s": self.best, "repeats": len(self.times)}


def _split(case):
    """A case is a callable to time, or a pair (prepare, run): run(prepare()) with only `run` timed."""
    return case if isinstance(case, tuple) else (None, case)


def measure(cases, warmup=1, repeats=5):
    """Time each case of the dict `cases` `repeats` times after `warmup` untimed rounds, alternating.

    Returns {name: Timing}. Garbage collection is paused during the loop so it does not land in one
    case's timing; arrays are still freed by reference counting as usual.
    """
    split = {name: _split(case) for name, case in cases.items()}
    times = {name: [] for name in cases}
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for round_ in range(warmup + repeats):
            for name, (prepare, run) in split.items():
                state = prepare() if prepare else None
                start = time.perf_counter()
                run(state) if prepare else run()
                elapsed = time.perf_counter() - start
                if round_ >= warmup:
                    times[name].append(elapsed)
                del state
    finally:
        if was_enabled:
            gc.enable()
    return {name: Timing(tuple(t)) for name, t in times.items()}
