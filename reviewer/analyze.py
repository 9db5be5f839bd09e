"""Run the whole analysis of one report: the I/O edge around the pure imaging code.

    analyze_report(report, settings, out)  ->  Review        (and the images the page needs)
    run(source, out, settings)             ->  Review        (find the report, analyse, write outputs)
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import json
import os
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from reviewer import cache
from reviewer.config import Settings
from reviewer.errors import ImageError
from reviewer.imaging.compare import MASK_CHANGED, MASK_INSERTED, MASK_NOISE, compare_images
from reviewer.imaging.decode import load_rgb, placeholder_reason
from reviewer.imaging.regions import pad_box
from reviewer.model import Pair, PairAnalysis, PairAssets, RegionKind, Report, Review, Verdict
from reviewer.outdir import file_sha256, output_lock
from reviewer.policy import decide
from reviewer.rank import rank

Progress = Callable[[int, int], None]

THUMB_WIDTH = 240
THUMB_MAX_HEIGHT = 720
CROP_PAD = 16
MAX_CROPS = 12
# Region crops are previews in the review page's side panel (shown at most ~300 x 160 CSS px;
# the main viewer shows the full-size screenshots). A crop larger than twice that is reduced
# by a whole factor (box average): a photo area that drifted is a megapixel crop, and
# encoding it at full size cost more than decoding the pair.
CROP_PREVIEW_W = 640
CROP_PREVIEW_H = 320


@dataclass(frozen=True)
class PairJob:
    pair: Pair
    settings: Settings
    images_dir: Path | None  # where to write the page's images; None = analysis only
    cache_dir: Path | None = None  # where analyses are cached (reviewer.cache); None = no cache
    pixels: int = 0  # the larger image's width x height from the PNG headers; 0 = unknown


@dataclass(frozen=True)
class PairResult:
    analysis: PairAnalysis
    assets: PairAssets
    cache_key: str | None = None  # the cache entry this pair used or wrote
    process: tuple[int, int] = (0, 0)  # (pid, resident bytes) of the process that ran it, once done


def error(reason: str, started: float) -> PairAnalysis:
    return PairAnalysis(Verdict.ERROR, reason, seconds=time.perf_counter() - started)


def analyze_pair(job: PairJob) -> tuple[PairAnalysis, PairAssets]:
    """Analyse one pair; never raises for a bad pair: it becomes verdict `error` with a reason."""
    result = _run_job(job)
    return result.analysis, result.assets


def _run_job(job: PairJob) -> PairResult:
    started = time.perf_counter()
    keys: list[str] = []
    try:
        analysis, assets = _analyze_pair(job, started, keys)
    except MemoryError:
        analysis, assets = error("not enough memory to compare these images", started), PairAssets()
    except Exception as exc:  # one broken pair must not sink the other 99; the reason says what happened
        analysis = error(f"internal error while comparing ({type(exc).__name__}: {exc})", started)
        assets = PairAssets()
    if job.pixels >= TRIM_PIXELS:
        _trim_heap()
    return PairResult(analysis, assets, keys[0] if keys else None, (os.getpid(), _process_baseline()))


def _analyze_pair(job: PairJob, started: float, keys: list[str] | None = None) -> tuple[PairAnalysis, PairAssets]:
    pair = job.pair
    if pair.path_problem:
        return error(pair.path_problem, started), PairAssets()
    if pair.backstop_error:
        reason = f"BackstopJS: {pair.backstop_error}"
        if all(path is not None and path.is_file() for path in (pair.reference, pair.test)):
            # BackstopJS gave up on the pair, yet both screenshots are in the report (a reference
            # captured afterwards, say): compare them so the page can show the evidence. The run
            # was broken all the same, so the pair stays an error and the release on hold.
            found, assets = _compare(job, started, keys)
            return replace(found, verdict=Verdict.ERROR,
                           reason=f"{reason} ({EVIDENCE_NOTE}: {found.reason})"), assets
        return error(reason, started), _copy_assets(job)
    return _compare(job, started, keys)


# Said of an error pair whose images were compared anyway (the review page shows the comparison).
EVIDENCE_NOTE = "both images are in the report; compared for display only"


def _compare(job: PairJob, started: float, keys: list[str] | None = None) -> tuple[PairAnalysis, PairAssets]:
    pair, settings = job.pair, job.settings
    for what, path in (("reference", pair.reference), ("test", pair.test)):
        if path is None:
            return error(f"the report names no {what} image for this pair", started), PairAssets()
        if not path.is_file():
            hint = " (run `backstop reference` for this scenario)" if what == "reference" else ""
            return error(f"{what} image {path.name} is missing from the report{hint}", started), _copy_assets(job)
    assert pair.reference is not None and pair.test is not None
    ref_digest, test_digest = file_sha256(pair.reference), file_sha256(pair.test)
    for what, digest in (("test", test_digest), ("reference", ref_digest)):
        reason = placeholder_reason(digest)
        if reason:
            return error(f"{what} image is BackstopJS's placeholder: {reason} ({pair.selector})", started), \
                _copy_assets(job)
    if ref_digest == test_digest:
        analysis = PairAnalysis(Verdict.UNCHANGED, "byte-identical files",
                                seconds=time.perf_counter() - started)
        return analysis, _copy_assets(job)
    ignore = settings.ignores_for(pair.label, pair.viewport)
    key = None
    if job.cache_dir is not None:
        key = cache.pair_key(ref_digest, test_digest, settings, ignore, job.images_dir is not None)
        if keys is not None:
            keys.append(key)
        hit = cache.load(job.cache_dir, key)
        if hit is not None:
            return _with_time(hit.analysis, started), _cached_assets(job, hit)
    try:
        ref, test = load_rgb(pair.reference), load_rgb(pair.test)
    except ImageError as exc:
        return error(str(exc), started), _copy_assets(job)
    mask = np.zeros(test.shape[:2], dtype=np.uint8) if job.images_dir else None
    analysis = compare_images(ref, test, settings, ignore, mask)
    assets = _write_assets(job, analysis, ref, test, mask)
    if key is not None and job.cache_dir is not None:
        _store(job, key, analysis, assets)
    return _with_time(analysis, started), assets


def _store(job: PairJob, key: str, analysis: PairAnalysis, assets: PairAssets) -> None:
    """Keep the analysis and the page images it produced (by file name) in the cache."""
    assert job.cache_dir is not None
    out = job.images_dir.parent if job.images_dir is not None else None
    files: dict[str, Path] = {}

    def name(rel: str | None) -> str | None:
        if rel is None or out is None:
            return None
        files[Path(rel).name] = out / rel
        return Path(rel).name

    images = {"mask": name(assets.mask), "thumb": name(assets.thumb),
              "crops": [[name(r), name(t)] for r, t in assets.crops]}
    cache.store(job.cache_dir, key, replace(analysis, seconds=0.0), images, files)


def _cached_assets(job: PairJob, hit: cache.Hit) -> PairAssets:
    """The page images of a cache hit, linked into this run's folder for the pair."""
    base = _copy_assets(job)
    d = _pair_dir(job)
    if d is None:
        return base

    def place(name: str | None) -> str | None:
        if name is None:
            return None
        dst = d / name
        _link_or_copy(hit.folder / name, dst)
        return _rel(dst, job)

    return PairAssets(reference=base.reference, test=base.test, mask=place(hit.images.get("mask")),
                      thumb=place(hit.images.get("thumb")),
                      crops=tuple((place(r), place(t)) for r, t in hit.images.get("crops", [])))


def _with_time(analysis: PairAnalysis, started: float) -> PairAnalysis:
    return replace(analysis, seconds=round(time.perf_counter() - started, 4))


def _pair_dir(job: PairJob) -> Path | None:
    if job.images_dir is None:
        return None
    d = job.images_dir / f"p{job.pair.index:04d}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _rel(path: Path, job: PairJob) -> str:
    assert job.images_dir is not None
    return path.relative_to(job.images_dir.parent).as_posix()


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        if os.path.samefile(src, dst):  # already linked by an earlier run into this folder
            return
    except OSError:
        pass
    tmp = dst.with_name(dst.name + ".part")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _copy_assets(job: PairJob) -> PairAssets:
    """Put the pair's own screenshots next to the page (hard links when possible)."""
    d = _pair_dir(job)
    if d is None:
        return PairAssets()
    out: dict[str, str] = {}
    for what, src in (("reference", job.pair.reference), ("test", job.pair.test)):
        if src is not None and src.is_file():
            dst = d / f"{what}.png"
            _link_or_copy(src, dst)
            out[what] = _rel(dst, job)
    return PairAssets(reference=out.get("reference"), test=out.get("test"))


# zlib's run-length strategy: a fifth faster than level 1's default on photo crops, for files a
# fifth larger; screenshots' flat areas compress as well either way.
Z_RLE = 3


def preview_factor(w: int, h: int) -> int:
    """The whole factor that brings a w x h crop within the preview size (1: as it is)."""
    return max(1, -(-w // CROP_PREVIEW_W), -(-h // CROP_PREVIEW_H))


def _save_crop(arr: np.ndarray, path: Path) -> None:
    factor = preview_factor(arr.shape[1], arr.shape[0])
    im = Image.fromarray(np.ascontiguousarray(arr))
    if factor > 1:
        im = im.reduce(factor)
    tmp = path.with_name(path.name + ".part")
    im.save(tmp, format="PNG", compress_level=1, compress_type=Z_RLE)
    os.replace(tmp, path)


def _write_assets(job: PairJob, analysis: PairAnalysis, ref: np.ndarray, test: np.ndarray,
                  mask: np.ndarray | None) -> PairAssets:
    base = _copy_assets(job)
    d = _pair_dir(job)
    if d is None or mask is None:
        return base
    mask_rel = None
    if mask.any():
        mask_rel = _write_mask(mask, d / "mask.png", job)
    thumb_rel = _write_thumb(test, d / "thumb.png", job)
    # A crop that is the whole screenshot (a page that drifted all over) is the screenshot
    # already linked beside the page when its file holds exactly these pixels (plain RGB):
    # point to it instead of encoding a copy.
    whole_ref = base.reference if job.pair.reference is not None and _plain_rgb(job.pair.reference) else None
    whole_test = base.test if job.pair.test is not None and _plain_rgb(job.pair.test) else None
    crops: list[tuple[str | None, str | None]] = []
    for k, region in enumerate(analysis.regions[:MAX_CROPS]):
        rbox = region.box
        tbox = pad_box(rbox, CROP_PAD, test.shape[1], test.shape[0])
        ref_rel = test_rel = None
        if region.kind is not RegionKind.REMOVED:
            if whole_test is not None and (tbox.w, tbox.h) == (test.shape[1], test.shape[0]):
                test_rel = whole_test
            else:
                p = d / f"r{k}-test.png"
                _save_crop(test[tbox.y : tbox.y2, tbox.x : tbox.x2], p)
                test_rel = _rel(p, job)
        if region.kind is not RegionKind.INSERTED:
            if region.kind is RegionKind.REMOVED and region.ref_y is not None and region.ref_h:
                y0, y1 = max(0, region.ref_y - CROP_PAD), min(ref.shape[0], region.ref_y + region.ref_h + CROP_PAD)
                x0, x1 = tbox.x, min(ref.shape[1], tbox.x2)
            else:
                y0, y1 = tbox.y, min(ref.shape[0], tbox.y2)
                x0, x1 = tbox.x, min(ref.shape[1], tbox.x2)
            if whole_ref is not None and (y0, x0, y1, x1) == (0, 0, ref.shape[0], ref.shape[1]):
                ref_rel = whole_ref
            elif y1 > y0 and x1 > x0:
                p = d / f"r{k}-reference.png"
                _save_crop(ref[y0:y1, x0:x1], p)
                ref_rel = _rel(p, job)
        crops.append((ref_rel, test_rel))
    return PairAssets(reference=base.reference, test=base.test, mask=mask_rel, thumb=thumb_rel,
                      crops=tuple(crops))


def _plain_rgb(path: Path) -> bool:
    """True when the file decodes to exactly the RGB array the analysis saw (8-bit RGB PNG,
    no transparency to composite)."""
    try:
        with Image.open(path) as im:
            return im.format == "PNG" and im.mode == "RGB" and "transparency" not in im.info
    except (OSError, ValueError, SyntaxError):
        return False


def _write_mask(mask: np.ndarray, path: Path, job: PairJob) -> str:
    palette = [0] * 768
    palette[MASK_NOISE * 3 : MASK_NOISE * 3 + 3] = [255, 176, 0]  # amber: discounted noise
    palette[MASK_CHANGED * 3 : MASK_CHANGED * 3 + 3] = [230, 0, 60]  # red: a change to look at
    palette[MASK_INSERTED * 3 : MASK_INSERTED * 3 + 3] = [0, 120, 255]  # blue: inserted rows
    # frombuffer shares the mask's memory: no two full-size copies while the pair's images are held.
    im = Image.frombuffer("P", (mask.shape[1], mask.shape[0]), np.ascontiguousarray(mask), "raw", "P", 0, 1)
    im.putpalette(palette)
    tmp = path.with_name(path.name + ".part")
    # Index 0 transparent, so the mask lies over the screenshot in the page. Four values fit
    # in 2 bits per pixel: a quarter of the bytes to filter and compress (4x faster to write).
    im.save(tmp, format="PNG", transparency=0, bits=2, compress_level=1, compress_type=Z_RLE)
    os.replace(tmp, path)
    return _rel(path, job)


def _write_thumb(test: np.ndarray, path: Path, job: PairJob) -> str:
    h, w = test.shape[:2]
    scale = THUMB_WIDTH / w if w > THUMB_WIDTH else 1.0
    crop_h = min(h, int(THUMB_MAX_HEIGHT / scale))
    # Every k-th pixel first (k at most half the reduction, so the resampling below still
    # averages): converting the full-size rows into a Pillow image was most of the cost.
    k = max(1, int(1 / scale) // 2)
    im = Image.fromarray(np.ascontiguousarray(test[:crop_h:k, ::k]))
    if scale < 1.0:
        # reducing_gap: box-reduce by a whole factor first, then resample: twice as fast and
        # indistinguishable at thumbnail size.
        im = im.resize((THUMB_WIDTH, max(1, round(crop_h * scale))), Image.Resampling.BILINEAR, reducing_gap=2.0)
    tmp = path.with_name(path.name + ".part")
    im.save(tmp, format="PNG", compress_level=1, compress_type=Z_RLE)
    os.replace(tmp, path)
    return _rel(path, job)


def _duplicates(pairs: Sequence[Pair]) -> dict[int, str]:
    """Later pairs that reuse an earlier pair's file name: their image may be the other's."""
    seen: dict[str, Pair] = {}
    dup: dict[int, str] = {}
    for p in pairs:
        first = seen.get(p.file)
        if first is not None:
            dup[p.index] = (f"file name {p.file!r} is also used by test {first.index} ({first.label}); "
                            "its screenshot may have been overwritten")
        else:
            seen[p.file] = p
    return dup


def _worker_init() -> None:
    # Ctrl-C reaches the whole process group; only the parent should react (and say so once),
    # the workers are shut down by it instead of each printing a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# After a pair this large, the worker hands the free parts of its heap back to the system.
TRIM_PIXELS = 4_000_000


def _trim_heap() -> None:
    """Give the free parts of the heap back after a large pair (a few ms): the many medium
    temporaries of an analysis leave holes that glibc would otherwise keep, so a worker would
    carry the memory of its largest pair into the next one. No effect without glibc."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def analyze_report(report: Report, settings: Settings, images_dir: Path | None = None,
                   progress: Progress | None = None, cache_dir: Path | None = None,
                   used_keys: set[str] | None = None,
                   ) -> tuple[list[tuple[Pair, PairAnalysis]], dict[int, PairAssets]]:
    """Analyse every pair, in parallel processes. `cache_dir` enables the result cache;
    the keys of the entries this run used are added to `used_keys`."""
    results: dict[int, tuple[PairAnalysis, PairAssets]] = {}
    dup = _duplicates(report.pairs)
    jobs = [PairJob(p, settings, images_dir, cache_dir, _pair_pixels(p)) for p in report.pairs if p.index not in dup]
    for index, reason in dup.items():
        results[index] = (PairAnalysis(Verdict.ERROR, reason), PairAssets())
    total = len(report.pairs)
    done = len(results)
    if progress:
        progress(done, total)

    def finished(job: PairJob, result: PairResult) -> None:
        nonlocal done
        results[job.pair.index] = (result.analysis, result.assets)
        if used_keys is not None and result.cache_key:
            used_keys.add(result.cache_key)
        done += 1
        if progress:
            progress(done, total)

    workers = settings.workers or os.cpu_count() or 1
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            finished(job, _run_job(job))
    else:
        _run_parallel(jobs, min(workers, len(jobs)), finished)
    items = [(p, results[p.index][0]) for p in report.pairs]
    assets = {p.index: results[p.index][1] for p in report.pairs}
    return items, assets


# Memory. A pair being analysed needs about PAIR_BYTES_PER_PIXEL per pixel of its larger
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


def _run_parallel(jobs: list[PairJob], workers: int, finished: Callable[[PairJob, PairResult], None]) -> None:
    pending = sorted(jobs, key=lambda j: (-j.pixels, j.pair.index))
    largest = max(j.pixels for j in jobs)
    parent = _process_baseline()
    budget = _memory_budget(largest, workers, parent)
    # A forked worker starts smaller than this process (the libraries' file-backed pages count
    # only once touched); what each keeps between pairs is measured after each of its pairs,
    # and the budget counts that instead of this process's size.
    held: dict[int, int] = {}  # worker pid -> resident bytes after its last pair
    running: dict[Future[PairResult], PairJob] = {}
    used = 0
    with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init) as pool:
        while pending or running:
            while pending and len(running) < workers:
                # The largest pending pair that fits beside the running ones (any pair when
                # nothing runs: a pair larger than the budget still has to be analysed).
                pick = next((j for j in pending if not running or used + _estimate(j) <= budget), None)
                if pick is None:
                    break
                pending.remove(pick)
                running[pool.submit(_run_job, pick)] = pick
                used += _estimate(pick)
            completed, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in completed:
                job = running.pop(fut)
                used -= _estimate(job)
                try:
                    result = fut.result()
                except Exception as exc:  # a worker that died (e.g. killed for memory)
                    result = PairResult(
                        PairAnalysis(Verdict.ERROR, f"analysis process failed ({type(exc).__name__})"), PairAssets())
                pid, rss = result.process
                if rss:
                    held[pid] = rss
                    budget = _memory_budget(largest, workers, parent, list(held.values())[-workers:])
                finished(job, result)


def _estimate(job: PairJob) -> int:
    return _estimate_pixels(job.pixels)


def _estimate_pixels(pixels: int) -> int:
    return PAIR_BYTES_PER_PIXEL * pixels + PAIR_FIXED_BYTES


def _memory_budget(largest: int, workers: int, parent: int | None = None, held: Sequence[int] = ()) -> int:
    """Bytes the pairs running at once may use: the target for the largest pair (less a small
    margin for the estimates' error), less what this process and the workers take before they
    hold any image (`held`: what workers were measured to keep; a worker not measured yet
    counts as large as this process); never less than the largest pair needs alone."""
    target = int(TARGET_BYTES_PER_PIXEL * largest * (1 - MEMORY_MARGIN))
    parent = _process_baseline() if parent is None else parent
    baseline = parent + sum(held) + max(0, workers - len(held)) * parent
    if target < baseline:  # small pages: the interpreters alone exceed the target
        return max(SMALL_REPORT_BUDGET, _estimate_pixels(largest))
    return max(target - baseline, _estimate_pixels(largest))


def _process_baseline() -> int:
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


def _pair_pixels(pair: Pair) -> int:
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


def build_review(report: Report, items: Sequence[tuple[Pair, PairAnalysis]], settings: Settings,
                 assets: dict[int, PairAssets] | None = None) -> Review:
    ranked = rank(items, settings)
    decision = decide(ranked)
    counts = Counter(a.verdict.value for _, a in items)
    return Review(
        report=report,
        ranked=ranked,
        decision=decision,
        settings_digest=settings.digest(),
        counts={v.value: counts.get(v.value, 0) for v in Verdict},
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        assets=assets or {},
        thresholds=settings.thresholds(),
    )


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary name, then rename: a reader sees the old file or the new, never half.
    A write that fails (disk full) removes its temporary file instead of leaving it behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def default_out_root() -> Path:
    return Path("reports")


def default_out(report: Report) -> Path:
    return default_out_root() / report.id


def run(source: Path, out: Path | None, settings: Settings, progress: Progress | None = None,
        on_report: Callable[[Report], None] | None = None, use_cache: bool = True) -> tuple[Review, Path]:
    """Find the report in SOURCE, analyse every pair, write the outputs into OUT.

    Returns the review and the output folder. Raises ReportError when the report itself
    cannot be read; bad pairs do not raise, they become `error` pairs. With `use_cache`, pair
    analyses are kept in OUT/.reviewer-cache and reused when the same files are analysed
    again with the same settings (reviewer.cache); entries this run did not use are dropped.
    """
    from reviewer.sources.local import load_report, opened_source

    # A zip is unpacked beside the output folder (see opened_source); the default output
    # folder, reports/<report id>, is named after the report it is about to read.
    with opened_source(source, out.parent if out is not None else default_out_root()) as folder:
        report = load_report(folder)
        if on_report:
            on_report(report)
        out_dir = out if out is not None else default_out(report)
        with output_lock(out_dir):
            cache_dir = out_dir / cache.CACHE_DIR_NAME if use_cache else None
            used: set[str] = set()
            items, assets = analyze_report(report, settings, out_dir / "images", progress, cache_dir, used)
            if cache_dir is not None:
                cache.prune(cache_dir, used)
            review = write_outputs(build_review(report, items, settings, assets), out_dir)
    return review, out_dir


def write_outputs(review: Review, out_dir: Path) -> Review:
    """Write summary.md, junit.xml, index.html and review.json; return the review with its digest.

    review.json goes last: its presence means the other outputs of that run are complete.
    """
    from reviewer.render.html import render_html
    from reviewer.render.jsonout import render_json
    from reviewer.render.junit import render_junit
    from reviewer.render.markdown import render_markdown

    json_text = render_json(review)
    review = replace(review, digest=json.loads(json_text)["digest"])
    write_text_atomic(out_dir / "summary.md", render_markdown(review, page_link="index.html"))
    write_text_atomic(out_dir / "junit.xml", render_junit(review))
    write_text_atomic(out_dir / "index.html", render_html(review))
    write_text_atomic(out_dir / "review.json", json_text)
    return review
