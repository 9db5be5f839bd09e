"""Run the whole analysis of one report: the I/O edge around the pure imaging code.

    analyze_report(report, settings, out)  ->  [AnalysedPair]  (and the images the page needs)
    run(source, out, settings)             ->  Review        (find the report, analyse, write outputs)
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from reviewer import cache, scheduler
from reviewer.assets import PairFolder, copy_screenshots, link_or_copy, pair_dir, rel_path, write_assets
from reviewer.config import Settings
from reviewer.errors import ImageError
from reviewer.imaging.compare import compare_images
from reviewer.imaging.decode import load_rgb, placeholder_reason
from reviewer.model import Pair, PairAnalysis, PairAssets, Report, Review, Verdict
from reviewer.outdir import check_out_dir, file_sha256, output_lock
from reviewer.policy import decide
from reviewer.rank import rank

Progress = Callable[[int, int], None]
AnalysedPair = tuple[Pair, PairAnalysis, PairAssets]

@dataclass(frozen=True)
class PairJob:
    pair: Pair
    settings: Settings
    images_dir: Path | None  # where to write the page's images; None = analysis only
    cache_dir: Path | None = None  # where analyses are cached (reviewer.cache); None = no cache
    pixels: int = 0  # the larger image's width x height from the PNG headers; 0 = unknown

    @property
    def folder(self) -> PairFolder:
        return PairFolder(self.images_dir, self.pair)


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
    if job.pixels >= scheduler.TRIM_PIXELS:
        scheduler.trim_heap()
    return PairResult(analysis, assets, keys[0] if keys else None, (os.getpid(), scheduler.process_baseline()))


def _process_failed(job: PairJob, exc: BaseException) -> PairResult:
    return PairResult(PairAnalysis(Verdict.ERROR, f"analysis process failed ({type(exc).__name__})"), PairAssets())


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
        return error(reason, started), copy_screenshots(job.folder)
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
            return (error(f"{what} image {path.name} is missing from the report{hint}", started),
                    copy_screenshots(job.folder))
    assert pair.reference is not None and pair.test is not None
    ref_digest, test_digest = file_sha256(pair.reference), file_sha256(pair.test)
    for what, digest in (("test", test_digest), ("reference", ref_digest)):
        reason = placeholder_reason(digest)
        if reason:
            return error(f"{what} image is BackstopJS's placeholder: {reason} ({pair.selector})", started), \
                copy_screenshots(job.folder)
    if ref_digest == test_digest:
        analysis = PairAnalysis(Verdict.UNCHANGED, "byte-identical files",
                                seconds=time.perf_counter() - started)
        return analysis, copy_screenshots(job.folder)
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
        return error(str(exc), started), copy_screenshots(job.folder)
    mask = np.zeros(test.shape[:2], dtype=np.uint8) if job.images_dir else None
    analysis = compare_images(ref, test, settings, ignore, mask)
    assets = write_assets(job.folder, analysis, ref, test, mask)
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
    base = copy_screenshots(job.folder)
    d = pair_dir(job.folder)
    if d is None:
        return base

    def place(name: str | None) -> str | None:
        if name is None:
            return None
        dst = d / name
        link_or_copy(hit.folder / name, dst)
        return rel_path(dst, job.folder)

    return PairAssets(reference=base.reference, test=base.test, mask=place(hit.images.get("mask")),
                      thumb=place(hit.images.get("thumb")),
                      crops=tuple((place(r), place(t)) for r, t in hit.images.get("crops", [])))


def _with_time(analysis: PairAnalysis, started: float) -> PairAnalysis:
    return replace(analysis, seconds=round(time.perf_counter() - started, 4))


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


def analyze_report(report: Report, settings: Settings, images_dir: Path | None = None,
                   progress: Progress | None = None, cache_dir: Path | None = None,
                   used_keys: set[str] | None = None,
                   ) -> list[AnalysedPair]:
    """Analyse every pair, in parallel processes. `cache_dir` enables the result cache;
    the keys of the entries this run used are added to `used_keys`."""
    results: dict[int, tuple[PairAnalysis, PairAssets]] = {}
    dup = _duplicates(report.pairs)
    jobs = [PairJob(p, settings, images_dir, cache_dir, scheduler.pair_pixels(p))
            for p in report.pairs if p.index not in dup]
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
        scheduler.run_parallel(jobs, min(workers, len(jobs)), _run_job, finished, _process_failed)
    return [(p, *results[p.index]) for p in report.pairs]


def build_review(report: Report, items: Sequence[AnalysedPair], settings: Settings) -> Review:
    """Rank the analysed pairs, decide, and carry each pair's page images on its ranked pair."""
    assets = {p.index: a for p, _analysis, a in items}
    ranked = tuple(replace(rp, assets=assets[rp.pair.index])
                   for rp in rank([(p, a) for p, a, _assets in items], settings))
    counts = Counter(a.verdict.value for _, a, _assets in items)
    return Review(
        report=report,
        ranked=ranked,
        decision=decide(ranked),
        settings_digest=settings.digest(),
        counts={v.value: counts.get(v.value, 0) for v in Verdict},
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
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
        on_report: Callable[[Report], None] | None = None, use_cache: bool = True, force: bool = False,
        inside_report: bool = False) -> tuple[Review, Path]:
    """Find the report in SOURCE, analyse every pair, write the outputs into OUT.

    Returns the review and the output folder. Raises ReportError when the report itself
    cannot be read; bad pairs do not raise, they become `error` pairs. With `use_cache`, pair
    analyses are kept in OUT/.reviewer-cache and reused when the same files are analysed
    again with the same settings (reviewer.cache); entries this run did not use are dropped.
    An OUT inside the report, or holding files no reviewer run wrote, is refused (UsageError)
    unless `inside_report` / `force` say it is meant.
    """
    from reviewer.sources.local import load_report, opened_source

    # A zip is unpacked beside the output folder (see opened_source); the default output
    # folder, reports/<report id>, is named after the report it is about to read.
    with opened_source(source, out.parent if out is not None else default_out_root()) as folder:
        report = load_report(folder)
        if on_report:
            on_report(report)
        out_dir = out if out is not None else default_out(report)
        check_out_dir(out_dir, report.root, force=force, inside_report=inside_report)
        with output_lock(out_dir):
            cache_dir = out_dir / cache.CACHE_DIR_NAME if use_cache else None
            used: set[str] = set()
            items = analyze_report(report, settings, out_dir / "images", progress, cache_dir, used)
            if cache_dir is not None:
                cache.prune(cache_dir, used)
            review = write_outputs(build_review(report, items, settings), out_dir)
    return review, out_dir


def write_outputs(review: Review, out_dir: Path) -> Review:
    """Write summary.md, junit.xml, index.html and review.json; return the review with its digest.

    review.json goes last: its presence means the other outputs of that run are complete.
    """
    from reviewer.render.html import render_html
    from reviewer.render.jsonout import json_text, review_document
    from reviewer.render.junit import render_junit
    from reviewer.render.markdown import render_markdown

    data = review_document(review)
    review = replace(review, digest=data["digest"])
    write_text_atomic(out_dir / "summary.md", render_markdown(review))
    write_text_atomic(out_dir / "junit.xml", render_junit(review))
    write_text_atomic(out_dir / "index.html", render_html(review))
    write_text_atomic(out_dir / "review.json", json_text(data))
    return review
