"""Judgment figures: what the judge decides on the calibration corpus, beside BackstopJS.

    .venv/bin/python benchmarks/judgment.py                      # the judge as shipped
    .venv/bin/python benchmarks/judgment.py --measures           # and the measures compared
    .venv/bin/python benchmarks/judgment.py --json out.json

The corpus (fixtures/calibration) is a real BackstopJS report of real third-party pages with a
label per pair (benign or real), split by page into a `tune` half and a `holdout` half. For each
split this prints: real changes caught, benign pairs flagged, the margin between the weakest real
change and the strongest benign difference as the judge sees them (its visible difference, in
units of its threshold), real changes located by a region box, and BackstopJS's own verdicts on
the same pairs at Planet 4's misMatchThreshold (3) and at its default (0.1).

`--measures` scores every candidate region with each perceptual measure the judge could use
(ꟻLIP, needs `pip install flip-evaluator`; spatial CIELAB without and with the move allowance;
each at two viewing distances), picks each measure's best threshold on the tune half, and
reports how that threshold does on the holdout half, with the time each measure took.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reviewer import analyze  # noqa: E402
from reviewer.config import Settings  # noqa: E402
from reviewer.imaging.align import align_rows, realign_same_height  # noqa: E402
from reviewer.imaging.candidates import differing_rows, scan_segment  # noqa: E402
from reviewer.imaging.decode import load_rgb  # noqa: E402
from reviewer.imaging.perceive import Viewing, colour_difference, reach, seen, structure_difference  # noqa: E402
from reviewer.imaging.regions import candidate_regions, crop, pad_box  # noqa: E402
from reviewer.model import Pair, Region, RegionKind  # noqa: E402
from reviewer.sources.local import load_report  # noqa: E402

CORPUS = ROOT / "fixtures" / "calibration"


@dataclass
class Row:
    """One labelled pair and what each judge made of it."""

    file: str
    label: str  # benign | real
    variant: str
    split: str
    box: tuple[int, int, int, int] | None
    verdict: str = ""
    strength: float | None = None  # strongest region as the judge weighs it (1 = counts); None: a band decided
    located: bool | None = None
    backstop3: bool | None = None  # True: BackstopJS failed the pair at misMatchThreshold 3
    backstop01: bool | None = None
    size_only: bool = False  # BackstopJS failed it only because the sizes differ
    scores: dict[str, float] = field(default_factory=dict)  # measure -> pair score
    why: str = ""
    by_band: bool = False  # a band of rows or columns decided the pair: no measure needed


def load_labels(corpus: Path) -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads((corpus / "labels.json").read_text())
    return data


def backstop_fails(pair: Pair, threshold: float) -> bool | None:
    """BackstopJS's verdict at `threshold`: its own status at the report's threshold; at another,
    misMatchPercentage above it (the corpus runs with requireSameDimensions false, as Planet 4)."""
    if pair.backstop_error:
        return True
    if threshold == pair.mismatch_threshold:
        return pair.backstop_status == "fail"
    if pair.backstop_mismatch is None:
        return None
    return pair.backstop_mismatch > threshold


def _overlaps(r: Region, b: tuple[int, int, int, int]) -> bool:
    """The region points at the labelled box. A removed band is a line in the test image where
    its rows were cut out; what followed moved up over the band's height, so that span counts."""
    x, y, w, h = b
    a = r.box
    y2 = a.y + max(a.h, r.ref_h or 0) if r.kind is RegionKind.REMOVED else a.y2
    return a.x < x + w and x < a.x2 and a.y < y + h and y < y2


def judge_rows(corpus: Path, settings: Settings) -> list[Row]:
    """Run the shipped analysis on the corpus report and fill one Row per labelled pair."""
    labels = load_labels(corpus)
    with tempfile.TemporaryDirectory() as tmp:
        review, _out = analyze.run(corpus / "report" / "backstop_data", Path(tmp) / "out", settings,
                                   use_cache=False)
    rows = []
    for rp in sorted(review.ranked, key=lambda r: r.pair.index):
        info = labels.get(rp.pair.file)
        if info is None:
            continue
        box = tuple(info["box"]) if info.get("box") else None  # type: ignore[arg-type]
        row = Row(rp.pair.file, str(info["label"]), str(info["variant"]), str(info["split"]),
                  box)  # type: ignore[arg-type]
        a = rp.analysis
        row.verdict, row.why = a.verdict.value, a.reason
        by_band = any(r.significant and r.kind in (RegionKind.INSERTED, RegionKind.REMOVED) for r in a.regions)
        row.by_band = by_band
        if not by_band and rp.pair.reference is not None and rp.pair.test is not None and rp.pair.reference.is_file():
            # Exact values (the judge stops measuring a pixel once it is under its threshold).
            row.strength = strength(channel_scores(load_rgb(rp.pair.reference), load_rgb(rp.pair.test), settings),
                                    settings) or None
        if row.label == "real" and row.box is not None:
            row.located = any(r.significant and _overlaps(r, row.box) for r in a.regions)
        row.backstop3 = backstop_fails(rp.pair, 3.0)
        row.backstop01 = backstop_fails(rp.pair, 0.1)
        row.size_only = bool(rp.pair.same_dimensions is False and (rp.pair.backstop_mismatch or 0) <= 3.0)
        rows.append(row)
    return rows


def summary(rows: list[Row]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for split in ("tune", "holdout", "all"):
        sel = [r for r in rows if split == "all" or r.split == split]
        real = [r for r in sel if r.label == "real"]
        benign = [r for r in sel if r.label == "benign"]
        weakest = min((r.strength for r in real if r.strength is not None and r.verdict == "changed"), default=None)
        strongest = max((r.strength for r in benign if r.strength is not None), default=None)
        out[split] = {
            "real": len(real), "benign": len(benign),
            "caught": sum(r.verdict == "changed" for r in real),
            "flagged": sum(r.verdict == "changed" for r in benign),
            "located": sum(bool(r.located) for r in real if r.box is not None),
            "with_box": sum(r.box is not None for r in real),
            "weakest_real": weakest, "strongest_benign": strongest,
            "margin": (weakest / strongest) if weakest and strongest else None,
            "backstop3_caught": sum(bool(r.backstop3) for r in real),
            "backstop3_flagged": sum(bool(r.backstop3) for r in benign),
            "backstop01_caught": sum(bool(r.backstop01) for r in real),
            "backstop01_flagged": sum(bool(r.backstop01) for r in benign),
            "flagged_files": [f"{r.file} ({r.variant})" for r in benign if r.verdict == "changed"],
            "missed_files": [f"{r.file} ({r.variant})" for r in real if r.verdict != "changed"],
        }
    return out


# -- comparing measures -------------------------------------------------------------------------

Measure = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def scielab(ppd: float) -> tuple[Measure, int]:
    """Spatial CIELAB as such: CIEDE2000 between the seen colours, no move allowed."""
    viewing = Viewing(ppd, 0)

    def measure(a: np.ndarray, b: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return colour_difference(seen(a, ppd), seen(b, ppd), ys, xs)

    return measure, reach(viewing)


def structure(ppd: float, tolerance: int) -> tuple[Measure, int]:
    """The judge's structure difference on S-CIELAB-seen lightness, moves up to `tolerance` px."""
    viewing = Viewing(ppd, tolerance)

    def measure(a: np.ndarray, b: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return structure_difference(seen(a, ppd), seen(b, ppd), ys, xs, tolerance)

    return measure, reach(viewing)


def flip(ppd: float, tolerance: int) -> tuple[Measure, int]:
    import flip_evaluator

    def one(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        err, _, _ = flip_evaluator.evaluate(a.astype(np.float32) / 255, b.astype(np.float32) / 255, "LDR",
                                            applyMagma=False, computeMeanError=False, parameters={"ppd": ppd})
        out: np.ndarray = err[..., 0]
        return out

    def measure(a: np.ndarray, b: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        best = one(a, b)
        if tolerance:  # the same allowance of moves: the least error over whole-pixel moves
            pad = np.pad(a, ((1, 1), (1, 1), (0, 0)), mode="edge")
            h, w = a.shape[:2]
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    if dy or dx:
                        moved = np.ascontiguousarray(pad[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w])
                        best = np.minimum(best, one(moved, b))
        return best[ys, xs]

    return measure, 16


def region_scores(ref: np.ndarray, test: np.ndarray, settings: Settings,
                  measures: dict[str, tuple[Measure, int]], seconds: dict[str, float]) -> dict[str, float]:
    """The pair score of each measure: its largest value at any candidate pixel."""
    w = min(ref.shape[1], test.shape[1])
    ref, test = ref[:, :w], test[:, :w]
    rows = differing_rows(ref, test) if ref.shape == test.shape else None
    segments = (realign_same_height(ref, test, rows) if rows is not None else None) or align_rows(ref, test)
    best = dict.fromkeys(measures, 0.0)
    for seg in segments:
        if seg.kind in ("inserted", "removed"):
            continue
        a, b = ref[seg.r0 : seg.r1], test[seg.t0 : seg.t1]
        scan = scan_segment(a, b, differing_rows(a, b), settings.drift_delta_e, (), settings.merge_distance_px)
        for cand in candidate_regions(scan, (b.shape[0], b.shape[1]), settings.merge_distance_px):
            for name, (measure, margin) in measures.items():
                box = pad_box(cand.box, margin, b.shape[1], b.shape[0])
                started = time.perf_counter()
                values = measure(crop(a, box), crop(b, box), cand.ys - box.y, cand.xs - box.x)
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
                best[name] = max(best[name], float(values.max()) if values.size else 0.0)
    return best


def compare_measures(corpus: Path, rows: list[Row], settings: Settings) -> dict[str, dict[str, object]]:
    measures: dict[str, tuple[Measure, int]] = {}
    for ppd in (47.0, 67.0):
        measures[f"S-CIELAB ΔE {ppd:g} px/°"] = scielab(ppd)
        measures[f"S-CIELAB structure {ppd:g} px/°, moves ≤ 1 px"] = structure(ppd, 1)
        try:
            measures[f"FLIP {ppd:g} px/°"] = flip(ppd, 0)
            measures[f"FLIP {ppd:g} px/°, moves ≤ 1 px"] = flip(ppd, 1)
        except ImportError:
            pass
    report = load_report(corpus / "report" / "backstop_data")
    by_file = {p.file: p for p in report.pairs}
    seconds: dict[str, float] = {}
    for row in rows:
        pair = by_file[row.file]
        if pair.reference is None or pair.test is None or not pair.reference.is_file():
            continue
        row.scores = region_scores(load_rgb(pair.reference), load_rgb(pair.test), settings, measures, seconds)
    out: dict[str, dict[str, object]] = {}
    judged = [r for r in rows if r.strength is not None or r.label == "benign"]
    out["the judge: structure (lone spots sooner) + colour of recoloured regions"] = _applied(
        [r for r in judged if not (r.label == "real" and r.by_band)], lambda r: r.strength or 0.0, 1.0)
    for name in measures:
        out[name] = evaluate_measure(rows, name)
        out[name]["seconds"] = round(seconds.get(name, 0.0), 2)
    return out


def evaluate_measure(rows: list[Row], name: str) -> dict[str, object]:
    """A pair's score is the measure's largest value at any candidate pixel. The threshold is
    the one with the fewest errors on the tune half (midway, in log scale, inside the best gap),
    then applied to the holdout half. Real pairs that a band decides are left out: a measure of
    candidate regions is not what catches them."""
    kept = [r for r in rows if name in r.scores and not (r.label == "real" and r.by_band)]

    def scored(split: str, label: str) -> list[float]:
        return [r.scores[name] for r in kept if r.split == split and r.label == label]

    real_t, benign_t = scored("tune", "real"), scored("tune", "benign")
    values = sorted(set(real_t + benign_t))
    best: tuple[int, float] | None = None
    for lo, hi in zip([0.0, *values], [*values, values[-1] * 2 if values else 1.0], strict=True):
        t = math.sqrt(max(lo, 1e-9) * hi)
        errors = sum(v < t for v in real_t) + sum(v >= t for v in benign_t)
        if best is None or errors < best[0]:
            best = (errors, t)
    threshold = best[1] if best else 1.0
    return _applied(kept, lambda r: r.scores[name], threshold)


def _applied(rows: list[Row], score: Callable[[Row], float], threshold: float) -> dict[str, object]:
    result: dict[str, object] = {"threshold": round(threshold, 3)}
    for split in ("tune", "holdout"):
        real = [score(r) for r in rows if r.split == split and r.label == "real"]
        benign = [score(r) for r in rows if r.split == split and r.label == "benign"]
        result[split] = {
            "caught": sum(v >= threshold for v in real), "real": len(real),
            "flagged": sum(v >= threshold for v in benign), "benign": len(benign),
            "margin": round(min(real) / max(benign), 2) if real and benign and max(benign) > 0 else None,
        }
    return result


# -- deriving the thresholds from the tune half ------------------------------------------------


def channel_scores(ref: np.ndarray, test: np.ndarray, settings: Settings) -> dict[str, float]:
    """The largest raw value of each of the judge's channels over a pair's candidate regions:
    structure in lone spots, structure elsewhere, colour in recoloured regions."""
    from reviewer.imaging.judge import ISOLATION_PX, SPOT_PIXELS, recolouring
    from reviewer.imaging.regions import isolated

    viewing = Viewing(settings.pixels_per_degree, settings.subpixel_tolerance_px)
    w = min(ref.shape[1], test.shape[1])
    ref, test = ref[:, :w], test[:, :w]
    rows = differing_rows(ref, test) if ref.shape == test.shape else None
    segments = (realign_same_height(ref, test, rows) if rows is not None else None) or align_rows(ref, test)
    out = {"spot": 0.0, "structure": 0.0, "colour": 0.0}
    for seg in segments:
        if seg.kind in ("inserted", "removed"):
            continue
        a, b = ref[seg.r0 : seg.r1], test[seg.t0 : seg.t1]
        scan = scan_segment(a, b, differing_rows(a, b), settings.drift_delta_e, (), settings.merge_distance_px)
        cands = candidate_regions(scan, (b.shape[0], b.shape[1]), settings.merge_distance_px)
        for cand, alone in zip(cands, isolated([c.box for c in cands], ISOLATION_PX), strict=True):
            box = pad_box(cand.box, reach(viewing), b.shape[1], b.shape[0])
            sa, sb = seen(crop(a, box), viewing.pixels_per_degree), seen(crop(b, box), viewing.pixels_per_degree)
            ys, xs = cand.ys - box.y, cand.xs - box.x
            st = float(structure_difference(sa, sb, ys, xs, viewing.tolerance).max())
            key = "spot" if alone and cand.ys.size <= SPOT_PIXELS else "structure"
            out[key] = max(out[key], st)
            if recolouring(a, b, cand):
                out["colour"] = max(out["colour"], float(colour_difference(sa, sb, ys, xs, viewing.tolerance).max()))
    return out


def strength(scores: dict[str, float], settings: Settings) -> float:
    """A pair's strongest candidate region as the judge weighs it: 1 = just counts."""
    from reviewer.imaging.judge import COLOUR, SPOT, STRUCTURE

    limits = {"spot": SPOT, "structure": STRUCTURE, "colour": COLOUR}
    return max(scores[k] / limits[k] for k in limits) * settings.sensitivity


def derive_thresholds(corpus: Path, settings: Settings) -> dict[str, object]:
    """Each channel's threshold from the tune half alone: midway (geometric mean) between the
    strongest benign value and the weakest real value that only this channel can catch; then
    how those thresholds do on the holdout half."""
    labels = load_labels(corpus)
    report = load_report(corpus / "report" / "backstop_data")
    from reviewer.imaging.compare import compare_images

    scores: list[tuple[dict[str, object], dict[str, float]]] = []
    for pair in report.pairs:
        info = labels.get(pair.file)
        if info is None or pair.reference is None or pair.test is None:
            continue
        ref, test = load_rgb(pair.reference), load_rgb(pair.test)
        if info["label"] == "real":
            # Real changes that a band of rows or columns already shows are not these channels'
            # business: their candidate regions are what moved around the band.
            bands = [r for r in compare_images(ref, test, settings).regions
                     if r.significant and r.kind in (RegionKind.INSERTED, RegionKind.REMOVED)]
            if bands:
                continue
        scores.append((info, channel_scores(ref, test, settings)))
    found: dict[str, float] = {}
    result_lines: list[str] = []
    for channel in ("spot", "structure", "colour"):
        benign = [sc[channel] for info, sc in scores if info["split"] == "tune" and info["label"] == "benign"]
        # The real pairs this channel is for: its value is their largest relative to the others'.
        real = [sc[channel] for info, sc in scores if info["split"] == "tune" and info["label"] == "real"
                and sc[channel] > 0 and sc[channel] == max(sc.values())]
        lo, hi = max(benign, default=0.0), min(real, default=0.0)
        result_lines.append(f"{channel}: tune benign max {lo:.2f}, tune real min {hi:.2f}")
        found[channel] = round(math.sqrt(lo * hi), 2) if lo > 0 and hi > lo else round(hi or lo, 2)
    result: dict[str, object] = {"thresholds": found, "tune_values": result_lines}
    for split in ("tune", "holdout"):
        def caught(sc: dict[str, float]) -> bool:
            return any(sc[k] >= found[k] > 0 for k in found)
        real = [caught(sc) for info, sc in scores if info["split"] == split and info["label"] == "real"]
        benign = [caught(sc) for info, sc in scores if info["split"] == split and info["label"] == "benign"]
        result[split] = {"real_caught_by_regions": sum(real), "real": len(real), "benign_flagged": sum(benign),
                         "benign": len(benign)}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--measures", action="store_true", help="also compare the candidate perceptual measures")
    ap.add_argument("--derive", action="store_true", help="derive the judge's thresholds from the tune half")
    ap.add_argument("--json", type=Path, help="write the figures as JSON")
    args = ap.parse_args(argv)
    settings = Settings(workers=2)
    if args.derive:
        derived = derive_thresholds(args.corpus, settings)
        print(json.dumps(derived, indent=1))
        return 0
    rows = judge_rows(args.corpus, settings)
    figures: dict[str, object] = {"judge": summary(rows)}
    for split, s in figures["judge"].items():  # type: ignore[union-attr]
        print(f"{split:8s} real {s['caught']}/{s['real']} caught ({s['located']}/{s['with_box']} located), "
              f"benign {s['flagged']}/{s['benign']} flagged, margin {_fmt(s['margin'])} "
              f"(weakest real {_fmt(s['weakest_real'])}, strongest benign {_fmt(s['strongest_benign'])} x threshold); "
              f"BackstopJS@3 {s['backstop3_caught']}/{s['real']} caught "
              f"{s['backstop3_flagged']}/{s['benign']} flagged; "
              f"@0.1 {s['backstop01_caught']}/{s['real']} caught {s['backstop01_flagged']}/{s['benign']} flagged")
        for f in s["flagged_files"]:
            print(f"    flagged: {f}")
        for f in s["missed_files"]:
            print(f"    missed:  {f}")
    if args.measures:
        figures["measures"] = compare_measures(args.corpus, rows, settings)
        for name, m in figures["measures"].items():  # type: ignore[union-attr]
            print(f"{name:40s} threshold {m['threshold']:<8} tune {m['tune']} holdout {m['holdout']} "
                  f"{m.get('seconds', '')} s")
    figures["rows"] = [r.__dict__ for r in rows]
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))
    return 0


def _fmt(v: object) -> str:
    return f"{v:.2f}" if isinstance(v, float) else "-"


if __name__ == "__main__":
    raise SystemExit(main())
