"""Running pairs side by side in processes without running out of memory.

Each job says how many pixels its larger image has (`pixels`, from the PNG headers); the
scheduler starts the largest pending job that fits beside the running ones within a budget
derived from the largest pair (see the note at MEMORY). Results come back to the parent as
they finish. Worker processes ignore Ctrl-C: the parent reacts, once.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Protocol, TypeVar

from reviewer.model import Pair


class Sized(Protocol):
    @property
    def pixels(self) -> int: ...


class Measured(Protocol):
    @property
    def process(self) -> tuple[int, int]: ...  # (pid, resident bytes) of the process that ran it


J = TypeVar("J", bound=Sized)
R = TypeVar("R", bound=Measured)


def worker_init() -> None:
    # Ctrl-C reaches the whole process group; only the parent should react (and say so once),
    # the workers are shut down by it instead of each printing a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# After a pair this large, the worker hands the free parts of its heap back to the system.
TRIM_PIXELS = 4_000_000


def trim_heap() -> None:
    """Give the free parts of the heap back after a large pair (a few ms): the many medium
    temporaries of an analysis leave holes that glibc would otherwise keep, so a worker would
    carry the memory of its largest pair into the next one. No effect without glibc."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)



# MEMORY. A pair being analysed needs about PAIR_BYTES_PER_PIXEL per pixel of its larger
# image plus PAIR_FIXED_BYTES: two RGB images, the mask, the scan of its differences and
# temporaries of bounded size. Measured on Planet 4 shaped pages: 13 bytes per pixel while the
# second image is decoded (the peak of most pairs), up to 16 plus ~20 MB for a page whose every
# pixel differs. The run must stay within TARGET_BYTES_PER_PIXEL of its largest pair: pairs run
# side by side only while their estimates fit what that leaves after the processes themselves
# (largest first, so they never end up alone at the end); a pair that needs more than that
# runs alone. When the interpreters alone (~80 MB each) exceed the target (a report of small
# pages), the target means nothing and pairs share SMALL_REPORT_BUDGET instead.
PAIR_BYTES_PER_PIXEL = 14
PAIR_FIXED_BYTES = 16 * 1024**2
TARGET_BYTES_PER_PIXEL = 40
MEMORY_MARGIN = 0.03
SMALL_REPORT_BUDGET = 256 * 1024**2


def run_parallel(jobs: list[J], workers: int, run_one: Callable[[J], R], finished: Callable[[J, R], None],
                 failed: Callable[[J, BaseException], R]) -> None:
    """Run `run_one` over `jobs` in `workers` processes within the memory budget; `finished` gets
    each result in the parent as it arrives, `failed` makes one for a job whose process died."""
    pending = sorted(jobs, key=lambda j: -j.pixels)  # stable: equal sizes keep the report's order
    largest = max(j.pixels for j in jobs)
    parent = process_baseline()
    budget = _memory_budget(largest, workers, parent)
    # A forked worker starts smaller than this process (the libraries' file-backed pages count
    # only once touched); what each keeps between pairs is measured after each of its pairs,
    # and the budget counts that instead of this process's size.
    held: dict[int, int] = {}  # worker pid -> resident bytes after its last pair
    running: dict[Future[R], J] = {}
    used = 0
    with ProcessPoolExecutor(max_workers=workers, initializer=worker_init) as pool:
        while pending or running:
            while pending and len(running) < workers:
                # The largest pending pair that fits beside the running ones (any pair when
                # nothing runs: a pair larger than the budget still has to be analysed).
                pick = next((j for j in pending if not running or used + _estimate(j) <= budget), None)
                if pick is None:
                    break
                pending.remove(pick)
                running[pool.submit(run_one, pick)] = pick
                used += _estimate(pick)
            completed, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in completed:
                job = running.pop(fut)
                used -= _estimate(job)
                try:
                    result = fut.result()
                except Exception as exc:  # a worker that died (e.g. killed for memory)
                    result = failed(job, exc)
                pid, rss = result.process
                if rss:
                    held[pid] = rss
                    budget = _memory_budget(largest, workers, parent, list(held.values())[-workers:])
                finished(job, result)


def _estimate(job: Sized) -> int:
    return _estimate_pixels(job.pixels)


def _estimate_pixels(pixels: int) -> int:
    return PAIR_BYTES_PER_PIXEL * pixels + PAIR_FIXED_BYTES


def _memory_budget(largest: int, workers: int, parent: int | None = None, held: Sequence[int] = ()) -> int:
    """Bytes the pairs running at once may use: the target for the largest pair (less a small
    margin for the estimates' error), less what this process and the workers take before they
    hold any image (`held`: what workers were measured to keep; a worker not measured yet
    counts as large as this process); never less than the largest pair needs alone."""
    target = int(TARGET_BYTES_PER_PIXEL * largest * (1 - MEMORY_MARGIN))
    parent = process_baseline() if parent is None else parent
    baseline = parent + sum(held) + max(0, workers - len(held)) * parent
    if target < baseline:  # small pages: the interpreters alone exceed the target
        return max(SMALL_REPORT_BUDGET, _estimate_pixels(largest))
    return max(target - baseline, _estimate_pixels(largest))


def process_baseline() -> int:
    """This process's resident memory now (interpreter and libraries): what each worker,
    forked from it, starts with."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 100 * 1024**2


def pair_pixels(pair: Pair) -> int:
    """The larger image's pixel count, from the PNG headers (24 bytes each); 0 when unknown."""
    best = 0
    for path in (pair.reference, pair.test):
        if path is None:
            continue
        try:
            with path.open("rb") as fh:
                head = fh.read(24)
        except OSError:
            continue
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            best = max(best, int.from_bytes(head[16:20], "big") * int.from_bytes(head[20:24], "big"))
    return best


