"""BackstopJS scenarios as BackstopJS 6.3 runs them, read from backstop.json (pure).

A BackstopJS report names, per pair, only the scenario's label, URL, selector and viewport
label. Everything else a re-capture must replay (waits, hidden and removed elements, hovers,
clicks, cookies, the viewport's size, the browser's flags) is in the project's `backstop.json`.
This module reads it with BackstopJS's own precedence, so that what is replayed is what
BackstopJS did, including its quirks:

- `scenarioDefaults` fill in every scenario; a scenario's own value wins.
- `readyEvent`, `readyTimeout`, `onBeforeScript` and `onReadyScript` fall back to the top level;
  `delay` does not (BackstopJS ignores a top-level `delay`, as in Planet 4's backstop.json).
- Hovers, clicks, key presses, `scrollToSelector`, `postInteractionWait` and cookies are not
  BackstopJS's own steps: its default engine scripts (`onReady.js` -> clickAndHoverHelper,
  `onBefore.js` -> loadCookies) perform them. They are replayed only when the scenario has such
  a script, as BackstopJS performed them only then.
- `puppeteerOffscreenCaptureFix` and `useBoundingBoxViewportForSelectors` are read from the top
  level of the config: BackstopJS 6.3 reads them there, so Planet 4's
  `engineOptions.puppeteerOffscreenCaptureFix` has no effect, and does not here either.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviewer.errors import UsageError

DEFAULT_READY_TIMEOUT_MS = 30_000
DEFAULT_NAVIGATION_TIMEOUT_MS = 60_000  # BackstopJS's TEST_TIMEOUT, unless engineOptions.waitTimeout
MAX_WAIT_MS = 120_000  # a longer delay in a config is a typo, not a wait worth replaying
# BackstopJS names selectors beyond the first match `<selector>.__n<k>` when selectorExpansion is on.
EXPANDED = re.compile(r"\.__n\d+$")


@dataclass(frozen=True)
class Scenario:
    """The options of one scenario that a re-capture replays (see the module docstring)."""

    label: str = ""
    ready_event: str | None = None
    ready_selector: str | None = None
    ready_timeout_ms: int = DEFAULT_READY_TIMEOUT_MS
    delay_ms: int = 0
    remove_selectors: tuple[str, ...] = ()
    hide_selectors: tuple[str, ...] = ()
    key_presses: tuple[tuple[str, str], ...] = ()  # (selector, text)
    hover_selectors: tuple[str, ...] = ()
    click_selectors: tuple[str, ...] = ()
    post_interaction_wait_ms: int = 0
    scroll_to_selector: str | None = None
    cookie_path: str | None = None
    on_before_script: str | None = None
    on_ready_script: str | None = None
    selector_expansion: bool = False
    wait_until: str = "load"
    viewports: dict[str, tuple[int, int]] = field(default_factory=dict)  # the scenario's own
    selectors: tuple[str, ...] = ()

    @property
    def interactions(self) -> bool:
        return bool(self.key_presses or self.hover_selectors or self.click_selectors or self.scroll_to_selector
                    or self.post_interaction_wait_ms)

    def replayed(self) -> tuple[str, ...]:
        """The options a re-capture of this scenario replays, named as in backstop.json."""
        names: list[tuple[str, object]] = [("readyEvent", self.ready_event), ("readySelector", self.ready_selector),
                 ("delay", self.delay_ms), ("removeSelectors", self.remove_selectors),
                 ("hideSelectors", self.hide_selectors)]
        if self.on_ready_script:
            names += [("keyPressSelectors", self.key_presses), ("hoverSelector", self.hover_selectors),
                      ("clickSelector", self.click_selectors), ("postInteractionWait", self.post_interaction_wait_ms),
                      ("scrollToSelector", self.scroll_to_selector)]
        if self.on_before_script:
            names.append(("cookiePath", self.cookie_path))
        return tuple(name for name, value in names if value)

    def script_notes(self) -> tuple[str, ...]:
        """What cannot be replayed faithfully: engine scripts are JavaScript run by BackstopJS's
        node process against puppeteer; only their standard steps are known."""
        notes = []
        if self.on_before_script:
            notes.append(f"onBeforeScript {self.on_before_script}: only its standard step (cookies from cookiePath) "
                         "is replayed")
        if self.on_ready_script:
            notes.append(f"onReadyScript {self.on_ready_script}: only its standard steps (key presses, hover, "
                         "click, postInteractionWait, scrollToSelector) are replayed")
        if not self.on_ready_script and self.interactions:
            notes.append("no onReadyScript: hover, click and scroll options were not performed by BackstopJS "
                         "and are not replayed")
        return tuple(notes)


@dataclass(frozen=True)
class EngineSettings:
    """How BackstopJS launched and drove the browser (backstop.json's engine and engineOptions)."""

    engine: str = "puppeteer"
    args: tuple[str, ...] = ()  # engineOptions.args, the flags BackstopJS added
    headless: str = "new"  # puppeteer's headless mode: "new" (--headless=new) or "shell" (--headless)
    executable_path: str | None = None
    offscreen_fix: bool = False  # top-level puppeteerOffscreenCaptureFix
    bounding_box_viewport: bool = True  # top-level useBoundingBoxViewportForSelectors !== false
    navigation_timeout_ms: int = DEFAULT_NAVIGATION_TIMEOUT_MS


@dataclass(frozen=True)
class BackstopConfig:
    viewports: dict[str, tuple[int, int]]
    scenarios: dict[str, Scenario]
    path: Path | None = None
    engine: EngineSettings = field(default_factory=EngineSettings)
    engine_scripts: Path | None = None  # paths.engine_scripts, resolved beside backstop.json
    problems: tuple[str, ...] = ()  # entries that were skipped, and why

    def scenario(self, label: str) -> Scenario:
        return self.scenarios.get(label) or Scenario(label=label)

    def cookie_file(self, scenario: Scenario) -> Path | None:
        """BackstopJS reads cookiePath relative to the folder it runs in: backstop.json's, here.
        Only a file inside that folder is read: cookies go to the scenario's site, and a config
        beside a report must not send that site a file from elsewhere on this machine."""
        if not scenario.cookie_path or self.path is None:
            return None
        project = self.path.parent.resolve()
        p = (project / scenario.cookie_path).resolve()
        if not p.is_relative_to(project):
            raise UsageError(f"cookiePath {scenario.cookie_path!r} of scenario {scenario.label!r} lies outside "
                             f"{project}: re-capture reads cookie files only beside backstop.json; copy it there")
        return p


# ---------------------------------------------------------------- values

def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strs(value: Any) -> tuple[str, ...]:
    """A selector or a list of them; BackstopJS accepts both."""
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str) and v)
    return ()


def _ms(value: Any, default: int = 0) -> int:
    """A non-negative duration in ms, capped; anything else is the default."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return default
    return min(int(value), MAX_WAIT_MS)


def timeout_ms(value: Any) -> int:
    """postInteractionWait as Node's setTimeout reads it: a number, or a string that is one
    ("500"); anything else (a selector, despite BackstopJS's comment) waits 1 ms."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return 0
    return _ms(value)


def _size(item: Any) -> tuple[str, tuple[int, int]] | None:
    if not isinstance(item, dict):
        return None
    label = item.get("label") or item.get("name")
    # BackstopJS reads viewport.width || viewport.viewport.width
    nested = _dict(item.get("viewport"))
    w, h = item.get("width") or nested.get("width"), item.get("height") or nested.get("height")
    if not (isinstance(label, str) and label and isinstance(w, int) and isinstance(h, int)):
        return None
    ok = all(not isinstance(v, bool) and 0 < v <= 20_000 for v in (w, h))
    return (label, (w, h)) if ok else None


def _viewports(items: Any) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for item in items if isinstance(items, list) else []:
        got = _size(item)
        if got:
            out.setdefault(*got)  # BackstopJS would capture both; the first is the one a label finds
    return out


def _key_presses(value: Any) -> tuple[tuple[str, str], ...]:
    items = value if isinstance(value, list) else [value]
    return tuple((i["selector"], i["keyPress"]) for i in items
                 if isinstance(i, dict) and isinstance(i.get("selector"), str) and isinstance(i.get("keyPress"), str))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _wait_until(scenario: dict[str, Any], config: dict[str, Any]) -> str:
    """gotoParameters.waitUntil, in Playwright's words (networkidle0/2 -> networkidle)."""
    for source in (scenario, config):
        params = _dict(_dict(source.get("engineOptions")).get("gotoParameters"))
        if params.get("waitUntil"):
            raw = params["waitUntil"]
            first = raw[0] if isinstance(raw, list) and raw else raw
            return {"load": "load", "domcontentloaded": "domcontentloaded", "networkidle0": "networkidle",
                    "networkidle2": "networkidle"}.get(str(first), "load")
    return "load"


def parse_scenario(raw: dict[str, Any], config: dict[str, Any]) -> Scenario:
    """One scenario with scenarioDefaults and the top-level fallbacks applied, as BackstopJS does."""
    sc = {**_dict(config.get("scenarioDefaults")), **raw}

    def pick(key: str) -> Any:
        return sc.get(key) if sc.get(key) else config.get(key)

    return Scenario(
        label=str(sc.get("label") or ""),
        ready_event=_text(pick("readyEvent")),
        ready_selector=_text(sc.get("readySelector")),
        ready_timeout_ms=_ms(pick("readyTimeout"), DEFAULT_READY_TIMEOUT_MS) or DEFAULT_READY_TIMEOUT_MS,
        delay_ms=_ms(sc.get("delay")),
        remove_selectors=_strs(sc.get("removeSelectors")),
        hide_selectors=_strs(sc.get("hideSelectors")),
        key_presses=_key_presses(sc.get("keyPressSelectors") or sc.get("keyPressSelector")),
        hover_selectors=_strs(sc.get("hoverSelectors") or sc.get("hoverSelector")),
        click_selectors=_strs(sc.get("clickSelectors") or sc.get("clickSelector")),
        post_interaction_wait_ms=timeout_ms(sc.get("postInteractionWait")),
        scroll_to_selector=_text(sc.get("scrollToSelector")),
        cookie_path=_text(sc.get("cookiePath")),
        on_before_script=_text(pick("onBeforeScript")),
        on_ready_script=_text(pick("onReadyScript")),
        selector_expansion=sc.get("selectorExpansion") is True or sc.get("selectorExpansion") == "true",
        wait_until=_wait_until(sc, config),
        viewports=_viewports(sc.get("viewports")),
        selectors=_strs(sc.get("selectors")),
    )


def parse_engine(config: dict[str, Any]) -> EngineSettings:
    opts = _dict(config.get("engineOptions"))
    args = tuple(a for a in opts.get("args") or [] if isinstance(a, str))
    headless = opts.get("headless")
    return EngineSettings(
        engine=str(config.get("engine") or "puppeteer").lower(),
        args=args,
        headless="shell" if headless == "shell" else "new",
        executable_path=_text(opts.get("executablePath")),
        offscreen_fix=bool(config.get("puppeteerOffscreenCaptureFix")),
        bounding_box_viewport=config.get("useBoundingBoxViewportForSelectors") is not False,
        navigation_timeout_ms=_ms(opts.get("waitTimeout"), DEFAULT_NAVIGATION_TIMEOUT_MS) or
        DEFAULT_NAVIGATION_TIMEOUT_MS,
    )


def parse_backstop_config(data: Any, path: Path | None = None) -> BackstopConfig:
    """Viewports, scenarios and engine settings from a parsed backstop.json; odd entries are
    skipped and named in `problems`, never guessed."""
    if not isinstance(data, dict):
        return BackstopConfig({}, {}, path, problems=("backstop.json is not a JSON object",))
    scenarios: dict[str, Scenario] = {}
    problems: list[str] = []
    for i, raw in enumerate(data.get("scenarios") or []):
        if not isinstance(raw, dict) or not isinstance(raw.get("label"), str):
            problems.append(f"scenario {i + 1} has no label: skipped")
            continue
        scenarios.setdefault(raw["label"], parse_scenario(raw, data))
    scripts = _dict(data.get("paths")).get("engine_scripts")
    engine_scripts = (path.parent / scripts) if path is not None and isinstance(scripts, str) and scripts else None
    return BackstopConfig(_viewports(data.get("viewports")), scenarios, path, parse_engine(data), engine_scripts,
                          tuple(problems))


PAGES_FILE = "backstop-pages.json"  # Planet 4 keeps each site's own scenarios here, beside backstop.json


def merge_configs(parts: Sequence[Any]) -> dict[str, Any]:
    """Several config files as one: scenarios are appended in order, any other top-level key
    is taken from the last file that sets it (backstop.json, then a site's backstop-pages.json)."""
    merged: dict[str, Any] = {}
    scenarios: list[Any] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        more = part.get("scenarios")
        if isinstance(more, list):
            scenarios += more
        merged.update({k: v for k, v in part.items() if k != "scenarios"})
    merged["scenarios"] = scenarios
    return merged


def load_backstop_config(paths: Path | Sequence[Path] | None) -> BackstopConfig:
    """backstop.json (and further files whose scenarios add to it), read and merged."""
    files = [paths] if isinstance(paths, Path) else list(paths or [])
    if not files:
        return BackstopConfig({}, {})
    parts = []
    for path in files:
        try:
            parts.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read {path}: {exc}; fix it, or pass the backstop.json BackstopJS ran with "
                             "as --backstop-config FILE") from None
    return parse_backstop_config(merge_configs(parts), files[0])


def find_backstop_config(root: Path) -> list[Path]:
    """backstop.json beside the report (in backstop_data's folder or up to two levels above),
    with Planet 4's backstop-pages.json when it lies beside it; [] when there is none."""
    for d in (root, root.parent, root.parent.parent):
        p = d / "backstop.json"
        if p.is_file():
            pages = d / PAGES_FILE
            return [p, pages] if pages.is_file() else [p]
    return []


def parse_viewport_option(text: str) -> tuple[str, tuple[int, int]]:
    """'phone=320x480' -> ('phone', (320, 480))."""
    label, sep, size = text.partition("=")
    w, x, h = size.lower().partition("x")
    if not sep or not x or not label or not w.isdigit() or not h.isdigit() or int(w) <= 0 or int(h) <= 0:
        raise UsageError(f"--viewport {text!r}: expected LABEL=WIDTHxHEIGHT, e.g. phone=320x480")
    return label, (int(w), int(h))


def expansion_bases(selectors: tuple[str, ...]) -> tuple[str, ...]:
    """The selectors BackstopJS expanded into `sel`, `sel.__n1`, ... (so a re-capture can tag
    the same elements again), in order, each once."""
    return tuple(dict.fromkeys(EXPANDED.sub("", s) for s in selectors if s not in ("document", "viewport", "body")))
