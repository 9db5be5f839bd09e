"""review.json: the stable, machine-readable result (schema 1).

The minimum contract (schema, decision, pairs[file,label,viewport,selector,verdict,score,rank,
regions[x,y,w,h,kind],backstop{status,mismatch}]) never changes within a schema number; every
other field is additive.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from reviewer.backstop import verdict_text
from reviewer.model import Box, PairAnalysis, PairAssets, RankedPair, Recapture, Region, RegionKind, Review, Verdict

SCHEMA = 1


def region_dict(r: Region) -> dict[str, Any]:
    d: dict[str, Any] = {
        "x": r.box.x, "y": r.box.y, "w": r.box.w, "h": r.box.h, "kind": r.kind.value,
        "pixels": r.pixels, "contrast": r.contrast, "ssim": r.ssim, "significant": r.significant,
        "visibility": r.visibility, "why": r.why,
    }
    if r.ref_y is not None:
        d["ref_y"], d["ref_h"] = r.ref_y, r.ref_h
    return d


def region_from_dict(d: dict[str, Any]) -> Region:
    return Region(
        box=Box(int(d["x"]), int(d["y"]), int(d["w"]), int(d["h"])),
        kind=RegionKind(d["kind"]),
        pixels=int(d["pixels"]),
        contrast=float(d["contrast"]),
        ssim=None if d["ssim"] is None else float(d["ssim"]),
        significant=bool(d["significant"]),
        visibility=None if d["visibility"] is None else float(d["visibility"]),
        ref_y=None if d.get("ref_y") is None else int(d["ref_y"]),
        ref_h=None if d.get("ref_h") is None else int(d["ref_h"]),
        why=str(d["why"]),
    )


# One serialiser for a pair's analysis: review.json's pair entries carry exactly these fields,
# and the result cache stores them (reviewer.cache), so the two can never disagree.
def analysis_dict(a: PairAnalysis) -> dict[str, Any]:
    return {
        "verdict": a.verdict.value,
        "reason": a.reason,
        "regions": [region_dict(r) for r in a.regions],
        "changed_pixels": a.changed_pixels,
        "noise_pixels": a.noise_pixels,
        "ssim": a.ssim,
        "reference_size": list(a.ref_size) if a.ref_size else None,
        "test_size": list(a.test_size) if a.test_size else None,
    }


def analysis_from_dict(d: dict[str, Any]) -> PairAnalysis:
    return PairAnalysis(
        verdict=Verdict(d["verdict"]),
        reason=str(d["reason"]),
        regions=tuple(region_from_dict(r) for r in d["regions"]),
        ref_size=_size(d["reference_size"]),
        test_size=_size(d["test_size"]),
        changed_pixels=int(d["changed_pixels"]),
        noise_pixels={str(k): int(v) for k, v in d["noise_pixels"].items()},
        ssim=None if d["ssim"] is None else float(d["ssim"]),
    )


def _size(v: Any) -> tuple[int, int] | None:
    return None if v is None else (int(v[0]), int(v[1]))


def assets_dict(a: PairAssets | None) -> dict[str, Any]:
    if a is None:
        return {}
    return {"reference": a.reference, "test": a.test, "mask": a.mask, "thumb": a.thumb,
            "crops": [{"reference": r, "test": t} for r, t in a.crops]}


def recapture_dict(r: Recapture) -> dict[str, Any]:
    return {"status": r.status, "message": r.message, "captures": r.captures,
            "areas": [{"x": b.x, "y": b.y, "w": b.w, "h": b.h} for b in r.areas], "notes": list(r.notes)}


def pair_dict(rp: RankedPair, review: Review) -> dict[str, Any]:
    p, a = rp.pair, rp.analysis
    d = {
        "file": p.file,
        "label": p.label,
        "viewport": p.viewport,
        "selector": p.selector,
        "url": p.url,
        "score": rp.score,
        "rank": rp.rank,
        "score_terms": [{"name": t.name, "value": t.value, "why": t.why} for t in rp.terms],
        **analysis_dict(a),
        "seconds": round(a.seconds, 4),
        "backstop": {
            "status": p.backstop_status,
            "mismatch": p.backstop_mismatch,
            "threshold": p.mismatch_threshold,
            "error": p.backstop_error,
            "why": verdict_text(p),
        },
        "images": assets_dict(rp.assets),
    }
    rc = review.recapture.get(p.index)
    if rc is not None:  # only after a re-capture: what it did to this pair
        d["recapture"] = recapture_dict(rc)
    return d


def review_dict(review: Review) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "report": {"id": review.report.id, "source": review.report.source_file.name,
                   "warnings": list(review.report.warnings)},
        "decision": {"action": review.decision.action, "reasons": list(review.decision.reasons)},
        "counts": review.counts,
        "settings_digest": review.settings_digest,
        "settings": review.thresholds,
        "generated_at": review.generated_at,
        "pairs": [pair_dict(rp, review) for rp in review.ranked],
    }


def analysis_digest(data: dict[str, Any]) -> str:
    """sha256 of the result without its timestamp: the same analysis gives the same digest."""
    stable = {k: v for k, v in data.items() if k not in ("generated_at", "digest")}
    stable["pairs"] = [{k: v for k, v in p.items() if k != "seconds"} for p in data["pairs"]]
    blob = json.dumps(stable, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def review_document(review: Review) -> dict[str, Any]:
    """review.json's content, with its digest (the review's own when it has one)."""
    data = review_dict(review)
    data["digest"] = review.digest or analysis_digest(data)
    return data


def json_text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render_json(review: Review) -> str:
    return json_text(review_document(review))
