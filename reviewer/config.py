"""Settings: thresholds, noise rules and ignore regions.

Read from `reviewer.toml` (top-level keys) or `[tool.reviewer]` in `pyproject.toml`. Every
setting has a default that suits Planet 4's BackstopJS reports, so no file is needed.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from reviewer.errors import UsageError
from reviewer.model import Box

# Planet 4's six viewports (shared/planet4/backstop.json): the first screen is what a visitor
# sees without scrolling, so a change there matters more.
PLANET4_VIEWPORT_HEIGHTS: dict[str, int] = {
    "mobile": 490,
    "small": 700,
    "medium": 980,
    "large": 640,
    "xlarge": 900,
    "xxlarge": 1100,
}


@dataclass(frozen=True)
class IgnoreRegion:
    """A rectangle (test-image pixels) whose differences never count, for matching pairs.

    `label` and `viewport` match exactly; "*" (the default) matches every pair.
    """

    x: int
    y: int
    w: int
    h: int
    label: str = "*"
    viewport: str = "*"

    def applies_to(self, label: str, viewport: str) -> bool:
        return self.label in ("*", label) and self.viewport in ("*", viewport)

    @property
    def box(self) -> Box:
        return Box(self.x, self.y, self.w, self.h)


@dataclass(frozen=True)
class Settings:
    # A colour difference below this CIEDE2000 distance is invisible drift, not a change.
    # 2.3 is the commonly quoted just-noticeable difference; 2.0 keeps a margin for it.
    drift_delta_e: float = 2.0
    # How sensitive the judge is: its thresholds are divided by this (imaging/judge.py). 2 flags
    # differences half as visible as the default does; 0.5 only those twice as visible.
    sensitivity: float = 1.0
    # Screenshot pixels per degree of visual angle: how far away the reviewer sits. 47 is the CSS
    # reference pixel (1/96 in seen from 28 in), the angle a CSS pixel has on a laptop screen.
    pixels_per_degree: float = 47.0
    # Moves of content up to this many pixels (whole or fractional) are not differences: text
    # re-rasterised at another sub-pixel position. 0 turns the allowance off.
    subpixel_tolerance_px: int = 1
    # Significant pixels closer than this are one region (a word, not one box per glyph).
    merge_distance_px: int = 12
    # Largest whole-pixel move that is reported as a "shift" rather than as new content.
    max_shift_px: int = 8
    # First-screen height per viewport label; unknown labels use default_first_screen_px.
    viewport_heights: dict[str, int] = field(default_factory=lambda: dict(PLANET4_VIEWPORT_HEIGHTS))
    default_first_screen_px: int = 800
    ignore_regions: tuple[IgnoreRegion, ...] = ()
    workers: int = 0  # 0 = one per core

    def first_screen(self, viewport: str) -> int:
        return self.viewport_heights.get(viewport, self.default_first_screen_px)

    def ignores_for(self, label: str, viewport: str) -> tuple[Box, ...]:
        return tuple(r.box for r in self.ignore_regions if r.applies_to(label, viewport))

    def thresholds(self) -> dict[str, float | int | bool]:
        """The scalar settings that decide verdicts, for the outputs to show."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "workers" and isinstance(getattr(self, f.name), bool | int | float)
        }

    def digest(self) -> str:
        """Identifies the settings that change analysis results (for the result cache)."""
        data = asdict(self)
        data.pop("workers")
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


_FIELDS = {f.name for f in fields(Settings)}
# Settings of earlier versions whose job the perceptual judge does now.
_RETIRED = {
    "detect_antialiasing": "anti-aliased edges are judged by what a person sees; remove it",
    "min_region_pixels": "small regions are judged by what a person sees; remove it (see `sensitivity`)",
}


def settings_from_mapping(data: dict[str, Any], origin: str) -> Settings:
    """Build Settings from a parsed TOML table, rejecting unknown keys and wrong types."""
    # [fleet] is read by reviewer.fleet.sites: the list of sites, not an analysis setting.
    data = {k: v for k, v in data.items() if k != "fleet"}
    retired = sorted(set(data) & set(_RETIRED))
    if retired:
        raise UsageError(f"{origin}: " + "; ".join(f"{k} is no longer a setting: {_RETIRED[k]}" for k in retired))
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise UsageError(
            f"{origin}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_FIELDS))}"
        )
    kwargs: dict[str, Any] = {}
    defaults = Settings()
    for key, value in data.items():
        if key == "ignore_regions":
            kwargs[key] = tuple(_ignore_region(item, origin) for item in _as_list(value, key, origin))
            continue
        if key == "viewport_heights":
            if not isinstance(value, dict) or not all(
                isinstance(v, int) and v > 0 for v in value.values()
            ):
                raise UsageError(f"{origin}: viewport_heights must map labels to positive integers")
            kwargs[key] = {**PLANET4_VIEWPORT_HEIGHTS, **value}
            continue
        expected = type(getattr(defaults, key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise UsageError(f"{origin}: {key} must be {expected.__name__}, got {value!r}")
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise UsageError(f"{origin}: {key} must not be negative, got {value!r}")
        if key in ("sensitivity", "pixels_per_degree") and value <= 0:
            raise UsageError(f"{origin}: {key} must be greater than 0, got {value!r}")
        kwargs[key] = value
    return Settings(**kwargs)


def _as_list(value: Any, key: str, origin: str) -> list[Any]:
    if not isinstance(value, list):
        raise UsageError(f"{origin}: {key} must be a list of tables")
    return value


def _ignore_region(item: Any, origin: str) -> IgnoreRegion:
    if not isinstance(item, dict):
        raise UsageError(f"{origin}: each ignore_regions entry must be a table with x, y, w, h")
    try:
        region = IgnoreRegion(
            x=int(item["x"]),
            y=int(item["y"]),
            w=int(item["w"]),
            h=int(item["h"]),
            label=str(item.get("label", "*")),
            viewport=str(item.get("viewport", "*")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(
            f"{origin}: ignore_regions entry {item!r} needs integer x, y, w, h ({exc})"
        ) from None
    extra = set(item) - {"x", "y", "w", "h", "label", "viewport"}
    if extra:
        raise UsageError(f"{origin}: ignore_regions entry has unknown key(s) {', '.join(sorted(extra))}")
    if region.w <= 0 or region.h <= 0:
        raise UsageError(f"{origin}: ignore_regions entry {item!r} needs positive w and h")
    return region


def load_settings(config: Path | None = None, search_from: Path | None = None) -> tuple[Settings, str]:
    """Return the settings and where they came from.

    An explicit `config` file wins; otherwise `reviewer.toml`, then `[tool.reviewer]` in
    `pyproject.toml`, looked up in `search_from` (default: the current directory).
    """
    if config is not None:
        return _load_file(config), str(config)
    base = search_from or Path.cwd()
    toml = base / "reviewer.toml"
    if toml.is_file():
        return _load_file(toml), str(toml)
    pyproject = base / "pyproject.toml"
    if pyproject.is_file():
        data = _read_toml(pyproject)
        table = data.get("tool", {}).get("reviewer")
        if isinstance(table, dict):
            return settings_from_mapping(table, f"{pyproject} [tool.reviewer]"), str(pyproject)
    return Settings(), "defaults"


def _load_file(path: Path) -> Settings:
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("reviewer", {})
    return settings_from_mapping(data, str(path))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
