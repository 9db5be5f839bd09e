"""Run the whole analysis of one report: the I/O edge around the pure imaging code.

    analyze_report(report, settings, out)  ->  Review        (and the images the page needs)
    run(source, out, settings)             ->  Review        (find the report, analyse, write outputs)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from reviewer.config import Settings
from reviewer.errors import ImageError
from reviewer.imaging.compare import MASK_CHANGED, MASK_INSERTED, MASK_NOISE, compare_images
from reviewer.imaging.decode import file_digest, load_rgb, placeholder_reason
from reviewer.imaging.regions import pad_box
from reviewer.model import Pair, PairAnalysis, PairAssets, RegionKind, Report, Review, Verdict
from reviewer.outdir import output_lock
from reviewer.policy import decide
from reviewer.rank import rank

Progress = Callable[[int, int], None]

THUMB_WIDTH = 240
THUMB_MAX_HEIGHT = 720
CROP_PAD = 16
MAX_CROPS = 12


@dataclass(frozen=True)
class PairJob:
    pair: Pair
    settings: Settings
    images_dir: Path | None  # where to write the page's images; None = analysis only


def error(reason: str, started: float) -> PairAnalysis:
    return PairAnalysis(Verdict.ERROR, reason, seconds=time.perf_counter() - started)


def analyze_pair(job: PairJob) -> tuple[PairAnalysis, PairAssets]:
    """Analyse one pair; never raises for a bad pair: it becomes verdict `error` with a reason."""
    started = time.perf_counter()
    try:
        return _analyze_pair(job, started)
    except MemoryError:
        return error("not enough memory to compare these images", started), PairAssets()
    except Exception as exc:  # one broken pair must not sink the other 99; the reason says what happened
        return error(f"internal error while comparing ({type(exc).__name__}: {exc})", started), PairAssets()


def _analyze_pair(job: PairJob, started: float) -> tuple[PairAnalysis, PairAssets]:
    pair, settings = job.pair, job.settings
    if pair.path_problem:
        return error(pair.path_problem, started), PairAssets()
    if pair.backstop_error:
        return error(f"BackstopJS: {pair.backstop_error}", started), _copy_assets(job)
    for what, path in (("reference", pair.reference), ("test", pair.test)):
        if path is None:
            return error(f"the report names no {what} image for this pair", started), PairAssets()
        if not path.is_file():
            hint = " (run `backstop reference` for this scenario)" if what == "reference" else ""
            return error(f"{what} image {path.name} is missing from the report{hint}", started), _copy_assets(job)
    assert pair.reference is not None and pair.test is not None
    ref_digest, test_digest = file_digest(pair.reference), file_digest(pair.test)
    for what, digest in (("test", test_digest), ("reference", ref_digest)):
        reason = placeholder_reason(digest)
        if reason:
            return error(f"{what} image is BackstopJS's placeholder: {reason} ({pair.selector})", started), \
                _copy_assets(job)
    if ref_digest == test_digest:
        analysis = PairAnalysis(Verdict.UNCHANGED, "byte-identical files",
                                seconds=time.perf_counter() - started)
        return analysis, _copy_assets(job)
    try:
        ref, test = load_rgb(pair.reference), load_rgb(pair.test)
    except ImageError as exc:
        return error(str(exc), started), _copy_assets(job)
    mask = np.zeros(test.shape[:2], dtype=np.uint8) if job.images_dir else None
    ignore = settings.ignores_for(pair.label, pair.viewport)
    analysis = compare_images(ref, test, settings, ignore, mask)
    assets = _write_assets(job, analysis, ref, test, mask)
    return _with_time(analysis, started), assets


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


def _save_png(arr: np.ndarray, path: Path) -> None:
    tmp = path.with_name(path.name + ".part")
    Image.fromarray(arr).save(tmp, format="PNG", compress_level=1)
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
    crops: list[tuple[str | None, str | None]] = []
    for k, region in enumerate(analysis.regions[:MAX_CROPS]):
        rbox = region.box
        tbox = pad_box(rbox, CROP_PAD, test.shape[1], test.shape[0])
        ref_rel = test_rel = None
        if region.kind is not RegionKind.REMOVED:
            p = d / f"r{k}-test.png"
            _save_png(np.ascontiguousarray(test[tbox.y : tbox.y2, tbox.x : tbox.x2]), p)
            test_rel = _rel(p, job)
        if region.kind is not RegionKind.INSERTED:
            if region.kind is RegionKind.REMOVED and region.ref_y is not None and region.ref_h:
                y0, y1 = max(0, region.ref_y - CROP_PAD), min(ref.shape[0], region.ref_y + region.ref_h + CROP_PAD)
                x0, x1 = tbox.x, min(ref.shape[1], tbox.x2)
            else:
                y0, y1 = tbox.y, min(ref.shape[0], tbox.y2)
                x0, x1 = tbox.x, min(ref.shape[1], tbox.x2)
            if y1 > y0 and x1 > x0:
                p = d / f"r{k}-reference.png"
                _save_png(np.ascontiguousarray(ref[y0:y1, x0:x1]), p)
                ref_rel = _rel(p, job)
        crops.append((ref_rel, test_rel))
    return PairAssets(reference=base.reference, test=base.test, mask=mask_rel, thumb=thumb_rel,
                      crops=tuple(crops))


def _write_mask(mask: np.ndarray, path: Path, job: PairJob) -> str:
    palette = [0] * 768
    palette[MASK_NOISE * 3 : MASK_NOISE * 3 + 3] = [255, 176, 0]  # amber: discounted noise
    palette[MASK_CHANGED * 3 : MASK_CHANGED * 3 + 3] = [230, 0, 60]  # red: a change to look at
    palette[MASK_INSERTED * 3 : MASK_INSERTED * 3 + 3] = [0, 120, 255]  # blue: inserted rows
    im = Image.frombytes("P", (mask.shape[1], mask.shape[0]), np.ascontiguousarray(mask).tobytes())
    im.putpalette(palette)
    tmp = path.with_name(path.name + ".part")
    # Index 0 transparent, so the mask lies over the screenshot in the page.
    im.save(tmp, format="PNG", transparency=0, compress_level=1)
    os.replace(tmp, path)
    return _rel(path, job)


def _write_thumb(test: np.ndarray, path: Path, job: PairJob) -> str:
    h, w = test.shape[:2]
    scale = THUMB_WIDTH / w if w > THUMB_WIDTH else 1.0
    crop_h = min(h, int(THUMB_MAX_HEIGHT / scale))
    im = Image.fromarray(np.ascontiguousarray(test[:crop_h]))
    if scale < 1.0:
        im = im.resize((THUMB_WIDTH, max(1, round(crop_h * scale))), Image.Resampling.BILINEAR)
    tmp = path.with_name(path.name + ".part")
    im.save(tmp, format="PNG", compress_level=1)
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


def analyze_report(report: Report, settings: Settings, images_dir: Path | None = None,
                   progress: Progress | None = None) -> tuple[list[tuple[Pair, PairAnalysis]], dict[int, PairAssets]]:
    results: dict[int, tuple[PairAnalysis, PairAssets]] = {}
    dup = _duplicates(report.pairs)
    jobs = [PairJob(p, settings, images_dir) for p in report.pairs if p.index not in dup]
    for index, reason in dup.items():
        results[index] = (PairAnalysis(Verdict.ERROR, reason), PairAssets())
    total = len(report.pairs)
    done = len(results)
    if progress:
        progress(done, total)
    workers = settings.workers or os.cpu_count() or 1
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            results[job.pair.index] = analyze_pair(job)
            done += 1
            if progress:
                progress(done, total)
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), initializer=_worker_init) as pool:
            futures = {pool.submit(analyze_pair, job): job for job in jobs}
            for fut in as_completed(futures):
                job = futures[fut]
                try:
                    results[job.pair.index] = fut.result()
                except Exception as exc:  # a worker that died (e.g. killed for memory)
                    results[job.pair.index] = (
                        PairAnalysis(Verdict.ERROR, f"analysis process failed ({type(exc).__name__})"),
                        PairAssets(),
                    )
                done += 1
                if progress:
                    progress(done, total)
    items = [(p, results[p.index][0]) for p in report.pairs]
    assets = {p.index: results[p.index][1] for p in report.pairs}
    return items, assets


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
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def default_out(report: Report) -> Path:
    return Path("reports") / report.id


def run(source: Path, out: Path | None, settings: Settings, progress: Progress | None = None,
        on_report: Callable[[Report], None] | None = None) -> tuple[Review, Path]:
    """Find the report in SOURCE, analyse every pair, write the outputs into OUT.

    Returns the review and the output folder. Raises ReportError when the report itself
    cannot be read; bad pairs do not raise, they become `error` pairs.
    """
    from reviewer.render.html import render_html
    from reviewer.render.jsonout import render_json
    from reviewer.render.junit import render_junit
    from reviewer.render.markdown import render_markdown
    from reviewer.sources.local import load_report, opened_source

    with opened_source(source) as folder:
        report = load_report(folder)
        if on_report:
            on_report(report)
        out_dir = out if out is not None else default_out(report)
        with output_lock(out_dir):
            items, assets = analyze_report(report, settings, out_dir / "images", progress)
            review = build_review(report, items, settings, assets)
            json_text = render_json(review)
            review = replace(review, digest=json.loads(json_text)["digest"])
            # review.json last: its presence means the other outputs of that run are complete.
            write_text_atomic(out_dir / "summary.md", render_markdown(review, page_link="index.html"))
            write_text_atomic(out_dir / "junit.xml", render_junit(review))
            write_text_atomic(out_dir / "index.html", render_html(review))
            write_text_atomic(out_dir / "review.json", json_text)
    return review, out_dir
