/* The review page's behaviour. Inlined into index.html at render time.
 *
 * Every string that comes from the report (labels, URLs, selectors, errors, reasons) reaches
 * the page through textContent or setAttribute on non-URL attributes: nothing from the report
 * is ever parsed as HTML or run. Image sources are our own relative paths ("images/p0001/...")
 * and are checked against a strict pattern before use.
 *
 * Lazy by design, so a 1,000-pair report opens quickly: the list rows of a collapsed group are
 * built when it is opened, and only the selected pair's full-size images are in the document.
 */
(function () {
  "use strict";

  var VERDICTS = ["changed", "error", "noise", "unchanged"];
  // [mode, button text, key, full name]: short button texts keep the toolbar on one line on a
  // laptop screen, so the image does not jump when the mode changes.
  var VIEWS = [
    ["side", "Side", "1", "Side by side"], ["swipe", "Swipe", "2", "Swipe"], ["onion", "Onion", "3", "Onion skin"],
    ["blink", "Blink", "4", "Blink"], ["heat", "Heat", "5", "Heat map"]
  ];
  var KIND_HELP = {
    content: "The outlines differ: text, an image or the layout changed, visibly (the judge's visible difference " +
      "reaches its threshold, allowing moves of less than a pixel).",
    colour: "Same outlines in both images, visibly different colours.",
    shift: "The same content moved by whole pixels. A move of 3 arcmin or less (2 px at 47 px/°) with nothing " +
      "else changed is discounted.",
    inserted: "Rows that exist only in the test image: content appeared and what follows moved down. Blank rows " +
      "at the end of the page are discounted.",
    removed: "Rows that exist only in the reference: content disappeared and what follows moved up.",
    invisible: "Noise: pixels differ, but a person flipping between the images sees nothing (re-rasterised " +
      "edges, re-encoded images): the visible difference stays under the threshold.",
    drift: "Noise: a colour difference below the drift threshold (CIEDE2000): nobody can see it.",
    ignored: "Inside a configured ignore region: never counts.",
    dynamic: "Noise: this area also differs between captures of the same build (a clock, a counter, a carousel)."
  };
  var LEGEND = [["content", "content changed"], ["colour", "colour changed"], ["shift", "moved"],
    ["inserted", "rows inserted"], ["removed", "rows removed"], ["noise", "noise"], ["dynamic", "dynamic"]];
  var SETTING_FOR_KIND = { drift: "drift_delta_e", invisible: "sensitivity", content: "sensitivity",
    colour: "sensitivity", shift: "max_shift_px", ignored: "ignore_regions" };
  var IMG_RE = /^images\/[A-Za-z0-9_\-]+(\/[A-Za-z0-9_\-.]+)*\.png$/;

  var data = readJSON("review-data") || { pairs: [], counts: {}, decision: { action: "hold", reasons: [] } };
  var actions = readJSON("review-actions") || {};
  var pairs = data.pairs || [];
  pairs.forEach(function (p, i) { p._i = i; p._search = [p.label, p.url, p.selector, p.file].join("\n").toLowerCase(); });
  // A pair's name in the review state: its file name, with "#rank" when the report uses the
  // name twice (reviewer/review_state.py names pairs the same way).
  var fileCount = {};
  pairs.forEach(function (p) { fileCount[p.file] = (fileCount[p.file] || 0) + 1; });
  pairs.forEach(function (p) { p._key = fileCount[p.file] === 1 ? p.file : p.file + "#" + p.rank; });

  var state = {
    sel: -1, view: "side", filters: { verdicts: { changed: true, error: true, noise: true, unchanged: true },
      viewport: "", text: "" },
    open: { changed: true, error: true, noise: true, unchanged: false }, viewer: null
  };
  var groups = {}; // verdict -> {section, body, rows: {pairIndex: row}, built}
  var ui = { chipN: {} };

  // ---------------------------------------------------------------- helpers
  function readJSON(id) {
    var node = document.getElementById(id);
    if (!node) { return null; }
    try { return JSON.parse(node.textContent || "null"); } catch (e) { return null; }
  }

  /* el("div", {class: "x", text: "y", title: "z", onclick: fn}, child, "text child") */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) { return; }
        if (k === "class") { node.className = v; }
        else if (k === "text") { node.textContent = String(v); }
        else if (k.slice(0, 2) === "on") { node.addEventListener(k.slice(2), v); }
        else if (k === "src" || k === "href" || k === "style" || k.slice(0, 2) === "on") { throw new Error(k); }
        else { node.setAttribute(k, v === true ? "" : String(v)); }
      });
    }
    for (var i = 2; i < arguments.length; i++) { append(node, arguments[i]); }
    return node;
  }
  function append(node, child) {
    if (child === null || child === undefined || child === false) { return; }
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
  }
  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }
  function img(path, cls, alt, lazy) {
    var node = document.createElement("img");
    if (cls) { node.className = cls; }
    node.alt = alt || "";
    node.decoding = "async";
    if (lazy) { node.loading = "lazy"; }
    if (typeof path === "string" && IMG_RE.test(path) && path.indexOf("..") < 0) { node.src = path; }
    return node;
  }
  function okImg(path) { return typeof path === "string" && IMG_RE.test(path) && path.indexOf("..") < 0; }
  function fmt(n, d) { return n === null || n === undefined ? "–" : Number(n).toFixed(d === undefined ? 1 : d); }
  function int(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString("en"); }
  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }
  function significant(r) { return r.significant === true; }
  function boxClass(r) {
    if (r.kind === "dynamic") { return "dynamic"; }
    return significant(r) ? r.kind : "noise";
  }
  function isBand(r) { return r.kind === "inserted" || r.kind === "removed"; }
  /* A band of whole columns (the page got wider or narrower) starts right of x 0; rows span it. */
  function isColumns(r) { return isBand(r) && r.x > 0; }
  /* How many rows (columns) a band holds: for a removed band the test image only has the seam. */
  function bandSize(r) {
    if (isColumns(r)) { return r.kind === "removed" ? Math.round(r.pixels / Math.max(r.ref_h || r.h, 1)) : r.w; }
    return r.kind === "removed" ? (r.ref_h || 0) : r.h;
  }
  /* "85 rows removed at y 868 of the reference" / "40 rows inserted at y 300 of the test" */
  function bandText(r) {
    var n = bandSize(r), cols = isColumns(r);
    var unit = (cols ? "column" : "row") + (n === 1 ? "" : "s");
    var removed = r.kind === "removed";
    var at = cols ? "x " + int(removed ? r.x + 1 : r.x) : "y " + int(removed ? r.ref_y : r.y);
    return int(n) + " " + unit + " " + r.kind + " at " + at + " of the " + (removed ? "reference" : "test");
  }
  function setting(name) {
    var s = data.settings;
    return s && s[name] !== undefined ? name + " = " + s[name] : name;
  }
  /* BackstopJS reported an error, yet both screenshots are in the report (captured afterwards):
     the comparison is shown, the pair stays an error. */
  function evidence(p) {
    return p.verdict === "error" && !!(p.backstop && p.backstop.error) && okImg(p.images && p.images.reference) &&
      okImg(p.images && p.images.test);
  }
  // Errors whose cause is known, and what to do about them.
  var ERROR_HINTS = [
    [/reference file not found|reference image .* is missing/i, "No reference screenshot: run `backstop reference` " +
      "for this scenario (e.g. `backstop reference --filter=\"LABEL\"`), then `backstop test` again."],
    [/waiting for selector .* failed|readyselector|waiting failed/i, "The page never showed what BackstopJS waited " +
      "for (readySelector / selector): check the page renders it, or raise readyTimeout in backstop.json."],
    [/placeholder|selector was not found|element not found/i, "The selector is not on the page any more: if the " +
      "element was removed on purpose, update or drop the scenario; otherwise the page lost it."],
    [/net::err_|navigation timeout|econnrefused|err_name_not_resolved/i, "The page did not load: check that its URL " +
      "answers from where BackstopJS runs, then run `backstop test` again."]
  ];
  function errorHint(p) {
    var text = [p.reason, p.backstop && p.backstop.error].join("\n");
    for (var i = 0; i < ERROR_HINTS.length; i++) {
      // a function, so that "$&" and the like in a label stay text
      if (ERROR_HINTS[i][0].test(text)) { return ERROR_HINTS[i][1].replace("LABEL", function () { return p.label; }); }
    }
    return null;
  }
  function selectorText(p) { return p.selector === "" ? "(no selector)" : p.selector; }

  // ---------------------------------------------------------------- header
  function buildHeader() {
    var top = document.getElementById("top");
    var chips = el("span", { class: "chips", role: "group", "aria-label": "Show verdicts" });
    VERDICTS.forEach(function (v) {
      var b = el("button", { class: "chip", type: "button", "aria-pressed": "true", "data-verdict": v,
        title: "Show or hide " + v + " pairs",
        onclick: function () {
          state.filters.verdicts[v] = !state.filters.verdicts[v];
          b.setAttribute("aria-pressed", String(state.filters.verdicts[v]));
          applyFilters();
        } }, el("span", { class: "n " + v, text: (data.counts || {})[v] || 0 }), v);
      ui.chipN[v] = b.firstChild;
      chips.appendChild(b);
    });
    var viewports = [];
    pairs.forEach(function (p) { if (viewports.indexOf(p.viewport) < 0) { viewports.push(p.viewport); } });
    var vpSel = el("select", { id: "f-viewport", "aria-label": "Viewport",
      onchange: function () { state.filters.viewport = vpSel.value; applyFilters(); } },
      el("option", { value: "", text: "all viewports" }));
    viewports.forEach(function (v) { vpSel.appendChild(el("option", { value: v, text: v })); });
    var timer = null;
    var search = el("input", { id: "f-text", type: "search", placeholder: "Filter label, URL…  /",
      "aria-label": "Filter by label, URL, selector or file",
      oninput: function () {
        clearTimeout(timer);
        timer = setTimeout(function () { state.filters.text = search.value.trim().toLowerCase(); applyFilters(); }, 120);
      } });
    // Always on screen while anything is filtered out, so a reviewer never believes a partial
    // list is the whole report.
    var shown = el("span", { id: "filter-state", class: "filtered", role: "status", hidden: true },
      el("span", { id: "filter-text" }),
      el("button", { class: "btn", type: "button", id: "filter-clear", title: "Show every pair again",
        onclick: function () { clearFilters(); }, text: "clear ✕" }));
    var slot = document.getElementById("filters");
    ui.progress = el("span", { id: "review-progress", class: "progress" });
    append(slot, [chips, vpSel, search, ui.progress]);
    // Above the list it cuts down, outside its scrolling: seen whatever the list shows.
    document.getElementById("filterbar").appendChild(shown);
    ui.search = search;
    ui.vpSel = vpSel;
    ui.chips = chips;
    ui.filterState = shown;
    ui.cancelSearch = function () { clearTimeout(timer); };
    var right = document.getElementById("top-right");
    if (actions && actions.endpoint !== undefined) { buildActions(right); }
    right.appendChild(el("button", { class: "btn", type: "button", id: "help-btn", title: "Keyboard shortcuts (?)",
      onclick: toggleHelp, text: "? Keys" }));
    void top;
  }

  // ---------------------------------------------------------------- list
  function buildList() {
    var list = document.getElementById("list");
    ui.empty = el("p", { class: "empty", text: "No pair matches the filters.", hidden: true });
    var d = data.decision || {};
    if (d.reasons && d.reasons.length) {
      var det = el("details", { class: "notice " + (d.action === "approve" ? "warn" : "hold"), id: "reasons" },
        el("summary", { text: (d.action === "approve" ? "Approve" : "Why it is on hold") + " (" + d.reasons.length + ")" }),
        el("ul", null, d.reasons.map(function (r) { return el("li", { class: "wrap", text: r }); })));
      list.appendChild(det);
    }
    var warnings = (data.report && data.report.warnings) || [];
    if (warnings.length) {
      list.appendChild(el("details", { class: "notice warn", id: "warnings" },
        el("summary", { text: "Report warnings (" + warnings.length + ")" }),
        el("ul", null, warnings.map(function (w) { return el("li", { class: "wrap", text: w }); }))));
    }
    if (!pairs.length) {
      list.appendChild(el("p", { class: "empty", text: "The report has no tests: nothing was compared." }));
    }
    VERDICTS.forEach(function (v) {
      var members = pairs.filter(function (p) { return p.verdict === v; });
      if (!members.length) { return; }
      var count = el("span", { class: "cnt" });
      var btn = el("button", { type: "button", "aria-expanded": String(state.open[v]),
        onclick: function () { toggleGroup(v); } },
        el("span", { class: "dot " + v }), el("span", { text: v }), count, el("span", { class: "spacer" }),
        el("span", { class: "muted", text: state.open[v] ? "▾" : "▸" }));
      var body = el("div", { class: "gbody", role: "listbox", "aria-label": v + " pairs" });
      var section = el("section", { class: "group", "data-verdict": v }, el("h2", null, btn), body);
      groups[v] = { section: section, body: body, button: btn, count: count, members: members, rows: {}, built: false };
      list.appendChild(section);
      if (state.open[v]) { buildRows(v); } else { body.hidden = true; }
    });
    list.appendChild(ui.empty);
  }

  function buildRows(v) {
    var g = groups[v];
    if (g.built) { return; }
    g.built = true;
    var frag = document.createDocumentFragment();
    g.members.forEach(function (p) {
      var row = makeRow(p);
      g.rows[p._i] = row;
      frag.appendChild(row);
    });
    g.body.appendChild(frag);
    applyFilters(true);
    refreshMarks();
  }

  function makeRow(p) {
    var sig = (p.regions || []).filter(significant);
    var kinds = {};
    sig.forEach(function (r) { kinds[r.kind] = (kinds[r.kind] || 0) + 1; });
    var what;
    if (p.verdict === "changed") {
      what = Object.keys(kinds).map(function (k) { return kinds[k] + " " + k; }).join(", ");
    } else if (p.verdict === "error") {
      what = p.reason;
    } else if (p.verdict === "noise") {
      what = "noise";
    } else {
      what = "unchanged";
    }
    var bs = "BackstopJS " + (p.backstop.status || "?");
    var bsTitle = "BackstopJS " + (p.backstop.why || p.backstop.status || "?");
    var missed = p.verdict === "changed" && p.backstop.status === "pass";
    var row = el("div", { class: "row " + p.verdict, role: "option", "aria-selected": "false", tabindex: "-1",
      id: "row-" + p.rank, "data-rank": p.rank, onclick: function () { select(p._i); } },
      el("span", { class: "rk", text: "#" + p.rank }),
      el("span", { class: "rv" }),
      labelEl(p.label),
      el("span", { class: "sc", text: p.verdict === "changed" ? fmt(p.score) : "" }),
      // The second line carries BackstopJS's verdict beside ours, so the score alone sizes the
      // right-hand column and the label keeps the width.
      el("span", { class: "line2" },
        el("span", { class: "sub", text: p.viewport + (p.selector && p.selector !== "document" ? " · " + p.selector : "") +
          " · " + what }),
        el("span", { class: "bs " + (p.backstop.status === "pass" ? "pass" : "fail") + (missed ? " missed" : ""),
          title: missed ? bsTitle + ": BackstopJS misses this change" : bsTitle,
          text: "BS " + (p.backstop.status || "?") + (missed ? " · missed" : "") })));
    return row;
  }

  // Labels are often paths ("/components/textarea/example-textarea-error") whose distinctive
  // part is the end: cut in the middle. The head gives up its width first (it shrinks a
  // thousand times faster); if the tail still does not fit, it loses its start, never its end
  // (right-to-left box around a left-to-right isolate). The whole label is the tooltip.
  function labelParts(label) {
    var cut = Math.max(label.lastIndexOf("/", label.length - 2) + 1, Math.floor(label.length * 0.45));
    if (label.length - cut > 40) { cut = label.length - 40; }
    return [label.slice(0, cut), label.slice(cut)];
  }
  function labelEl(label) {
    var parts = labelParts(label);
    return el("span", { class: "lb", title: label },
      el("span", { class: "lb-head", text: parts[0] }),
      el("span", { class: "lb-tail" }, el("span", { class: "lb-end", dir: "ltr", text: parts[1] })));
  }

  function toggleGroup(v, open) {
    var g = groups[v];
    if (!g) { return; }
    state.open[v] = open === undefined ? !state.open[v] : open;
    g.button.setAttribute("aria-expanded", String(state.open[v]));
    g.button.lastChild.textContent = state.open[v] ? "▾" : "▸";
    g.body.hidden = !state.open[v];
    if (state.open[v]) { buildRows(v); }
  }

  function matches(p) {
    return state.filters.verdicts[p.verdict] && matchesText(p);
  }
  function matchesText(p) {
    var f = state.filters;
    if (f.viewport && p.viewport !== f.viewport) { return false; }
    if (f.text && p._search.indexOf(f.text) < 0) { return false; }
    return true;
  }

  /* What is filtered out, in words; "" when every pair is shown. */
  function filterWords() {
    var f = state.filters, words = [];
    if (f.text) { words.push("“" + f.text + "”"); }
    if (f.viewport) { words.push(f.viewport); }
    var off = VERDICTS.filter(function (v) { return !f.verdicts[v]; });
    if (off.length) { words.push("hiding " + off.join(", ")); }
    return words.join(" · ");
  }

  function clearFilters() {
    if (ui.cancelSearch) { ui.cancelSearch(); }
    state.filters.text = "";
    state.filters.viewport = "";
    ui.search.value = "";
    ui.vpSel.value = "";
    VERDICTS.forEach(function (v) {
      state.filters.verdicts[v] = true;
      ui.chips.querySelector('[data-verdict="' + v + '"]').setAttribute("aria-pressed", "true");
    });
    applyFilters();
  }

  /* The header chips count the pairs the text and viewport filters let through. */
  function updateFilterState(shownTotal) {
    var filtered = !!(state.filters.text || state.filters.viewport);
    VERDICTS.forEach(function (v) {
      var n = ui.chipN[v];
      if (!n) { return; }
      var all = 0, hit = 0;
      pairs.forEach(function (p) { if (p.verdict === v) { all++; if (matchesText(p)) { hit++; } } });
      n.textContent = filtered ? hit + "/" + all : String(all);
      n.parentNode.title = (filtered ? hit + " of " + all + " " + v + " pairs match the filter. " : "") +
        "Show or hide " + v + " pairs";
    });
    var words = filterWords();
    ui.filterState.hidden = !words;
    ui.filterState.firstChild.textContent = words ? "Filtered: " + words + " — " + shownTotal + " of " +
      pairs.length + " pairs shown" : "";
  }

  function applyFilters(quiet) {
    var shownTotal = 0;
    VERDICTS.forEach(function (v) {
      var g = groups[v];
      if (!g) { return; }
      var shown = 0;
      g.members.forEach(function (p) {
        var ok = matches(p);
        if (ok) { shown++; }
        var row = g.rows[p._i];
        if (row) { row.hidden = !ok; }
      });
      shownTotal += shown;
      g.section.hidden = shown === 0;
      g.count.textContent = shown === g.members.length ? String(shown) : shown + " of " + g.members.length;
    });
    ui.empty.hidden = shownTotal > 0 || !pairs.length;
    updateFilterState(shownTotal);
    if (quiet) { return; }
    var cur = pairs[state.sel];
    if (!cur || !matches(cur)) {
      var nav = navigable();
      if (nav.length) { select(nav[0]); } else { showNothing(); }
    }
  }

  /* Pairs that j/k move through: those the filters show, in open groups, in rank order. */
  function navigable() {
    var out = [];
    pairs.forEach(function (p) { if (matches(p) && state.open[p.verdict]) { out.push(p._i); } });
    return out;
  }

  function step(delta) {
    var nav = navigable();
    if (!nav.length) { return; }
    var at = nav.indexOf(state.sel);
    var next = at < 0 ? (delta > 0 ? 0 : nav.length - 1) : clamp(at + delta, 0, nav.length - 1);
    if (nav[next] !== state.sel) { select(nav[next]); }
  }

  // ---------------------------------------------------------------- selection
  function select(i, opts) {
    var p = pairs[i];
    if (!p) { return; }
    opts = opts || {};
    if (!state.open[p.verdict]) { toggleGroup(p.verdict, true); }
    var old = pairs[state.sel];
    if (old) {
      var oldRow = groups[old.verdict] && groups[old.verdict].rows[old._i];
      if (oldRow) { oldRow.setAttribute("aria-selected", "false"); }
    }
    state.sel = i;
    var row = groups[p.verdict].rows[i];
    if (row) {
      row.setAttribute("aria-selected", "true");
      row.scrollIntoView({ block: "nearest" });
    }
    showPair(p, opts);
  }

  function showNothing() {
    if (state.viewer) { state.viewer.destroy(); state.viewer = null; }
    state.sel = -1;
    var d = document.getElementById("detail");
    clear(d);
    d.appendChild(el("p", { class: "empty", text: pairs.length ? "No pair matches the filters." : "Nothing to show." }));
  }

  function showPair(p, opts) {
    var detail = document.getElementById("detail");
    if (state.viewer) { state.viewer.destroy(); state.viewer = null; }
    clear(detail);
    detail.setAttribute("data-rank", p.rank);
    detail.appendChild(pairHeader(p));
    var hasImages = okImg(p.images && p.images.test) || okImg(p.images && p.images.reference);
    var toolbar = el("div", { class: "toolbar", role: "toolbar", "aria-label": "View" });
    var work = el("div", { class: "work" });
    var viewerEl = el("div", { class: "viewer", id: "viewer" });
    var minimap = el("div", { class: "minimap", id: "minimap", title: "Where the differences are on the page; click to go there" });
    var side = el("aside", { class: "side", id: "regions" });
    append(work, [viewerEl, minimap, side]);
    append(detail, [toolbar, work]);
    if (!hasImages) {
      viewerEl.appendChild(el("p", { class: "noimg", text: "No screenshot to show for this pair." }));
    }
    var v = new Viewer(p, viewerEl, minimap, side, toolbar);
    state.viewer = v;
    v.setView(opts.view || state.view, true);
    if (opts.region !== undefined && opts.region >= 0) {
      v.focusRegion(opts.region);
    } else {
      // Context first: the whole width of the page with every box drawn, scrolled to where
      // the first change is; zooming in is the reviewer's choice (a region, n/p or z).
      v.reveal(v.firstRegion());
    }
    updateHash();
  }

  function pairHeader(p) {
    var bs = p.backstop || {};
    var title = el("div", { class: "ptitle" },
      el("span", { class: "badge " + p.verdict, text: p.verdict }),
      el("h2", { id: "pair-title", title: p.label, text: p.label }),
      el("span", { class: "vp", text: p.viewport + " · " + selectorText(p) }),
      p.verdict === "changed" ? el("span", { class: "sc", text: "score " + fmt(p.score) }) : null,
      el("span", { class: "spacer" }),
      markButtons(p),
      el("span", { class: "muted", text: "#" + p.rank + " of " + pairs.length }),
      el("button", { class: "btn", type: "button", title: "Previous pair (k)", onclick: function () { step(-1); }, text: "‹ prev" }),
      el("button", { class: "btn", type: "button", title: "Next pair (j)", onclick: function () { step(1); }, text: "next ›" }));
    var meta = el("div", { class: "meta" },
      el("span", { class: "mono", id: "pair-url", text: p.url || "(no URL in the report)" }), "  ·  ",
      el("span", { class: "mono", text: p.file }));
    var ours = el("div", { id: "our-verdict" }, el("div", { class: "who", text: "reviewer" }),
      el("strong", { text: p.verdict.toUpperCase() }), " — ", el("span", { class: "wrap", text: p.reason }));
    var bsText, agree = true;
    // The same words as review.json, summary.md and the terminal (reviewer/backstop.py).
    bsText = bs.why || (bs.status || "?");
    var note = null;
    if (p.verdict === "changed" && bs.status === "pass") {
      agree = false;
      note = "BackstopJS passed this pair: its report hides this change.";
    } else if ((p.verdict === "noise" || p.verdict === "unchanged") && bs.status === "fail") {
      agree = false;
      note = "BackstopJS failed this pair, but nothing a person can see changed.";
    } else if (p.verdict === "error" && bs.status === "pass") {
      agree = false;
      note = "BackstopJS passed this pair, but it could not really be compared.";
    }
    var theirs = el("div", { id: "backstop-verdict", class: agree ? "" : "disagree" },
      el("div", { class: "who", text: "BackstopJS" }), el("span", { class: "wrap", text: bsText }),
      note ? el("div", null, el("strong", { text: note })) : null);
    var head = el("div", { class: "phead" }, title, meta, el("div", { class: "verdicts" }, ours, theirs));
    var hint = p.verdict === "error" ? errorHint(p) : null;
    if (evidence(p) || hint) {
      head.appendChild(el("div", { class: "errorbox", id: "error-note" },
        evidence(p) ? el("strong", { id: "evidence", text: "BackstopJS errored; images found afterwards. " }) : null,
        evidence(p) ? el("span", { text: "The comparison below is for information only: the pair stays an error, and " +
          "the release stays on hold until BackstopJS runs cleanly. " }) : null,
        hint ? el("span", { id: "error-hint", text: hint }) : null));
    }
    var rc = recaptureNote(p.recapture);
    if (rc) { head.appendChild(rc); }
    if (p.score_terms && p.score_terms.length) {
      head.appendChild(el("details", { class: "terms" },
        el("summary", { text: "score " + fmt(p.score) + " = " + p.score_terms.map(function (t) {
          return t.name + " " + (t.value >= 0 ? "+" : "") + fmt(t.value); }).join(", ") }),
        el("ul", null, p.score_terms.map(function (t) {
          return el("li", null, el("strong", { text: t.name }), " " + (t.value >= 0 ? "+" : "") + fmt(t.value) + ": ",
            el("span", { text: t.why }));
        }))));
    }
    return head;
  }

  /* What re-capture did to this pair: the outcome, how many captures, the dynamic areas (boxed
     in the images) and what could not be replayed. */
  function recaptureNote(rc) {
    if (!rc || !rc.status) { return null; }
    var areas = (rc.areas || []).length;
    var head = "Re-capture: " + rc.status + " — " + rc.message;
    var lines = [rc.captures + " capture(s) of the same build" + (areas ? "; " + areas +
      " area(s) differed between them (dotted violet boxes)" : "")].concat(rc.notes || []);
    return el("details", { class: "recap " + rc.status, id: "recapture", open: rc.status === "failed" },
      el("summary", { text: head }),
      el("ul", null, lines.map(function (t) { return el("li", { text: t }); })));
  }

  // ---------------------------------------------------------------- viewer
  function Viewer(p, host, minimap, side, toolbar) {
    this.p = p; this.host = host; this.minimap = minimap; this.side = side; this.toolbar = toolbar;
    this.regions = p.regions || [];
    this.ref = okImg(p.images && p.images.reference) ? p.images.reference : null;
    this.test = okImg(p.images && p.images.test) ? p.images.test : null;
    this.mask = okImg(p.images && p.images.mask) ? p.images.mask : null;
    this.size = { ref: p.reference_size ? p.reference_size.slice() : null, test: p.test_size ? p.test_size.slice() : null };
    this.zoom = 1; this.fit = true; this.region = -1; this.swipe = 0.5; this.onion = 0.5;
    this.blinkOn = true; this.blinkShowsTest = true; this.timer = null; this.panes = []; this.boxes = [];
    this.showBoxes = true; this.syncing = false;
    var self = this;
    this.onResize = function () { if (self.fit) { self.zoom = self.fitZoom(); } self.layout(); };
    window.addEventListener("resize", this.onResize);
    this.buildToolbar();
    this.buildSide();
    minimap.addEventListener("click", function (e) {
      var pane = self.mainPane();
      var H = self.pageHeight();
      if (!pane || !H) { return; }
      var r = minimap.getBoundingClientRect();
      var f = (e.clientY - r.top) / r.height;
      pane.scrollTop = f * H * self.zoom - pane.clientHeight / 2;
    });
  }

  Viewer.prototype.destroy = function () {
    clearInterval(this.timer);
    window.removeEventListener("resize", this.onResize);
  };

  Viewer.prototype.buildToolbar = function () {
    var self = this, tb = this.toolbar;
    var seg = el("span", { class: "seg", role: "group", "aria-label": "View" });
    this.viewButtons = {};
    VIEWS.forEach(function (v) {
      var b = el("button", { class: "btn", type: "button", "data-view": v[0], "aria-pressed": "false",
        title: v[3] + " (" + v[2] + ")", onclick: function () { self.setView(v[0]); } }, v[1] + " ", el("kbd", { text: v[2] }));
      self.viewButtons[v[0]] = b;
      seg.appendChild(b);
    });
    // The same width in every mode, empty or not: the controls after it never move.
    this.extra = el("span", { class: "extra" });
    var zoom = el("span", { class: "seg", role: "group", "aria-label": "Zoom" },
      el("button", { class: "btn", type: "button", title: "Zoom out (-)", onclick: function () { self.zoomBy(1 / 1.5); }, text: "−" }),
      this.zoomLabel = el("button", { class: "btn", type: "button", title: "Fit width (f) / actual size (0)",
        onclick: function () { if (self.fit) { self.setZoom(1); } else { self.fitNow(); } }, text: "fit" }),
      el("button", { class: "btn", type: "button", title: "Zoom in (+)", onclick: function () { self.zoomBy(1.5); }, text: "+" }));
    var n = this.regions.length;
    this.regionLabel = el("span", { class: "muted", id: "region-pos", text: n ? "region –/" + n : "no regions" });
    var nav = el("span", { class: "seg", role: "group", "aria-label": "Regions" },
      el("button", { class: "btn", type: "button", title: "Previous region (p)", "aria-label": "Previous region",
        disabled: !n, onclick: function () { self.stepRegion(-1); }, text: "◀" }),
      el("button", { class: "btn", type: "button", title: "Next region (n)", "aria-label": "Next region",
        disabled: !n, onclick: function () { self.stepRegion(1); }, text: "▶" }));
    var boxes = el("label", { title: "Show region boxes (x)" }, this.boxToggle = el("input", { type: "checkbox", checked: true,
      onchange: function () { self.showBoxes = self.boxToggle.checked; self.layout(); } }), " boxes");
    append(tb, [seg, this.extra, zoom, nav, this.regionLabel, boxes]);
  };

  Viewer.prototype.buildSide = function () {
    var self = this, side = this.side, p = this.p;
    var crops = (p.images && p.images.crops) || [];
    var regs = this.regions;
    var sig = regs.filter(significant).length;
    side.appendChild(el("h3", { text: regs.length ? (sig ? sig + " changed region(s)" : "") +
      (regs.length > sig ? (sig ? ", " : "") + (regs.length - sig) + " discounted" : "") : "No regions" }));
    if (!regs.length) {
      side.appendChild(el("p", { class: "muted", text: p.verdict === "unchanged" ? "The screenshots are identical." :
        evidence(p) ? "The images found afterwards show no difference a person would see." :
        p.verdict === "error" ? "Nothing was compared: see the error above." : "Nothing to point at." }));
    }
    this.cards = regs.map(function (r, k) {
      var c = crops[k] || {};
      var area = r.w * r.h;
      var kindTxt = r.kind + (significant(r) ? "" : " (noise)");
      var dl = el("dl", null,
        el("dt", { text: "where" }), isBand(r) ? el("dd", { class: "band-text", text: bandText(r) }) :
          el("dd", { text: "x " + r.x + ", y " + r.y + " · " + r.w + "×" + r.h + " px" }),
        el("dt", { text: "area" }), el("dd", { text: isBand(r) ? int(r.pixels) + " px only in the " +
          (r.kind === "removed" ? "reference" : "test") + " image" : int(r.pixels) + " px differ (" +
          (area ? Math.min(100, 100 * r.pixels / area).toFixed(0) : "–") + "% of the box)" }),
        el("dt", { text: "visible" }), el("dd", { text: r.visibility === null || r.visibility === undefined ?
          "not measured (decided by the rule below)" : fmt(r.visibility, 2) + "× what a person notices (counts from 1)" }),
        el("dt", { text: "contrast" }), el("dd", { text: "ΔE " + fmt(r.contrast) + " per pixel, before the eye's blur" }),
        el("dt", { text: "SSIM" }), el("dd", { text: r.ssim === null || r.ssim === undefined ? "–" :
          fmt(r.ssim, 3) + " (1 = same structure)" }),
        el("dt", { text: "decided" }), el("dd", { class: "wrap", text: r.why || "–" }),
        el("dt", { text: "rule" }), el("dd", { class: "wrap", text: (KIND_HELP[r.kind] || r.kind) +
          (SETTING_FOR_KIND[r.kind] ? " [" + setting(SETTING_FOR_KIND[r.kind]) + "]" : "") }));
      var figs = [];
      if (okImg(c.reference)) { figs.push(el("figure", null, cropImg(c.reference, "reference crop of region " + (k + 1)),
        el("figcaption", { text: "reference" }))); }
      if (okImg(c.test)) { figs.push(el("figure", null, cropImg(c.test, "test crop of region " + (k + 1)),
        el("figcaption", { text: "test" }))); }
      var card = el("div", { class: "region", "data-k": k, tabindex: "0", role: "button",
        "aria-label": "Region " + (k + 1) + ": " + kindTxt,
        onclick: function () { self.focusRegion(k); },
        onkeydown: function (e) { if (e.key === "Enter") { self.focusRegion(k); } } },
        el("div", { class: "rh" }, el("i", { class: "swatch " + boxClass(r) }), el("span", { text: String(k + 1) }),
          el("span", { class: "kind", text: kindTxt })),
        dl, figs.length ? el("div", { class: "crops" }, figs) : null);
      side.appendChild(card);
      return card;
    });
    // The legend names every kind of box this pair draws, with the very classes the boxes use,
    // and the selection ring, whose colour no box uses.
    var used = {};
    regs.forEach(function (r) { used[boxClass(r)] = true; });
    var legend = LEGEND.filter(function (e) { return used[e[0]]; }).map(function (e) {
      return el("span", { "data-legend": e[0] }, el("i", { class: "swatch " + e[0] }), e[1]);
    });
    if (this.p.recapture && (this.p.recapture.areas || []).length) {
      legend.push(el("span", { "data-legend": "recap" }, el("i", { class: "swatch recap" }), "differs between captures"));
    }
    if (regs.length) {
      legend.push(el("span", { "data-legend": "selected" }, el("i", { class: "swatch selected" }), "selected region"));
    }
    side.appendChild(el("div", { class: "legend" }, legend));
  };

  /* A crop of a wide, short region squeezed to the panel's width would be a few pixels tall:
     such a crop keeps a readable height and scrolls sideways instead. */
  var CROP_MIN_H = 56;
  function cropImg(path, alt) {
    var node = img(path, "", alt, true);
    node.addEventListener("load", function () {
      var want = Math.min(CROP_MIN_H, node.naturalHeight);
      if (node.naturalHeight && node.clientHeight < want - 0.5) {
        node.style.width = Math.round(want * node.naturalWidth / node.naturalHeight) + "px";
        node.style.maxWidth = "none";
        if (node.parentNode) { node.parentNode.classList.add("wide"); }
      }
    });
    return node;
  }

  Viewer.prototype.setView = function (mode, initial) {
    var self = this;
    var keep = this.region;
    var pane = this.mainPane();
    var center = pane && !initial ? this.centerOf(pane) : null;
    this.mode = mode;
    state.view = mode;
    Object.keys(this.viewButtons).forEach(function (k) {
      self.viewButtons[k].setAttribute("aria-pressed", String(k === mode));
    });
    clearInterval(this.timer);
    this.timer = null;
    this.buildExtra();
    this.build();
    if (this.fit) { this.zoom = this.fitZoom(); }
    this.layout();
    if (keep >= 0) { this.focusRegion(keep, false, true); }
    else if (center) { this.scrollToCenter(center[0], center[1]); }
    if (mode === "blink") { this.startBlink(); }
    if (!initial) { updateHash(); }
  };

  Viewer.prototype.buildExtra = function () {
    var self = this;
    clear(this.extra);
    if (this.mode === "swipe") {
      var r = el("input", { type: "range", min: "0", max: "100", value: String(Math.round(this.swipe * 100)),
        "aria-label": "Swipe position", id: "swipe-range",
        oninput: function () { self.swipe = r.value / 100; self.layout(); } });
      this.swipeRange = r;
      append(this.extra, ["reference ", r, " test"]);
    } else if (this.mode === "onion") {
      var o = el("input", { type: "range", min: "0", max: "100", value: String(Math.round(this.onion * 100)),
        "aria-label": "Test image opacity", id: "onion-range",
        oninput: function () { self.onion = o.value / 100; self.layout(); } });
      append(this.extra, ["reference ", o, " test"]);
    } else if (this.mode === "blink") {
      this.blinkBtn = el("button", { class: "btn", type: "button", id: "blink-toggle", title: "Pause / flip (b)",
        onclick: function () { self.flip(); }, text: "pause" });
      append(this.extra, [this.blinkBtn]);
    }
  };

  Viewer.prototype.build = function () {
    var self = this;
    clear(this.host);
    this.panes = [];
    this.layers = [];
    var hasAny = this.ref || this.test;
    if (!hasAny) {
      this.host.appendChild(el("p", { class: "noimg", text: "No screenshot to show for this pair." }));
      this.renderMinimap();
      return;
    }
    var mode = this.mode;
    if (mode === "side") {
      this.addPane("reference", [["ref", this.ref, ""]], "ref");
      this.addPane("test", [["test", this.test, ""]], "test");
      this.panes.forEach(function (pane) {
        pane.el.addEventListener("scroll", function () { self.sync(pane); self.updateWindow(); });
      });
    } else {
      var layers;
      if (mode === "heat") {
        layers = [["test", this.test || this.ref, "dim"]];
        if (this.mask) { layers.push(["mask", this.mask, "mask"]); }
      } else {
        layers = [["ref", this.ref, ""], ["test", this.test, ""]];
      }
      var label = { swipe: "reference | test", onion: "reference + test", blink: "test", heat: "differences over test" }[mode];
      var pane = this.addPane(label, layers, "overlay");
      pane.el.addEventListener("scroll", function () {
        if (self.mode === "swipe") { self.layout(); } else { self.updateWindow(); }
      });
      if (mode === "swipe") { this.bindSwipe(pane); }
    }
    this.renderMinimap();
  };

  Viewer.prototype.addPane = function (label, layers, role) {
    var self = this;
    var paneEl = el("div", { class: "pane", "data-role": role, tabindex: "0", "aria-label": label });
    var tag = el("span", { class: "tag", text: label });
    var tagWrap = el("div", { class: "tagwrap" }, tag);
    var stage = el("div", { class: "stage" + (this.mode === "swipe" ? " swipe" : "") });
    var pane = { el: paneEl, stage: stage, role: role, layers: [], tag: tag };
    layers.forEach(function (l) {
      if (!l[1]) {
        stage.appendChild(el("div", { class: "noimg", text: "no " + (l[0] === "ref" ? "reference" : "test") + " image" }));
        return;
      }
      var node = img(l[1], "layer " + l[2], l[0] === "ref" ? "reference screenshot" : l[0] === "mask" ?
        "difference mask" : "test screenshot");
      node.setAttribute("data-layer", l[0]);
      node.addEventListener("load", function () {
        var which = l[0] === "ref" ? "ref" : "test";
        if (l[0] === "mask") { return; }
        var s = self.size[which];
        if (!s || s[0] !== node.naturalWidth || s[1] !== node.naturalHeight) {
          self.size[which] = [node.naturalWidth, node.naturalHeight];
          if (self.fit) { self.zoom = self.fitZoom(); }
          self.layout();
          if (self.region >= 0) { self.focusRegion(self.region, false, true); }
        }
      });
      node.addEventListener("error", function () { node.setAttribute("data-broken", "true"); });
      stage.appendChild(node);
      pane.layers.push({ kind: l[0], node: node });
    });
    if (this.mode === "swipe") {
      pane.divider = el("div", { class: "divider" });
      stage.appendChild(pane.divider);
    }
    pane.boxes = el("div", { class: "boxes" });
    stage.appendChild(pane.boxes);
    append(paneEl, [tagWrap, stage]);
    this.host.appendChild(paneEl);
    this.panes.push(pane);
    return pane;
  };

  Viewer.prototype.bindSwipe = function (pane) {
    var self = this, dragging = false;
    function move(e) {
      var r = pane.el.getBoundingClientRect();
      var sr = pane.stage.getBoundingClientRect();
      var left = Math.max(r.left, sr.left), right = Math.min(r.left + pane.el.clientWidth, sr.right);
      self.swipe = clamp((e.clientX - left) / Math.max(1, right - left), 0, 1);
      if (self.swipeRange) { self.swipeRange.value = String(Math.round(self.swipe * 100)); }
      self.layout();
    }
    pane.stage.addEventListener("pointerdown", function (e) {
      if (e.target && e.target.classList && e.target.classList.contains("box")) { return; }
      dragging = true;
      pane.stage.setPointerCapture(e.pointerId);
      move(e);
    });
    pane.stage.addEventListener("pointermove", function (e) { if (dragging) { move(e); } });
    pane.stage.addEventListener("pointerup", function () { dragging = false; });
    pane.stage.addEventListener("pointercancel", function () { dragging = false; });
  };

  Viewer.prototype.mainPane = function () {
    if (!this.panes.length) { return null; }
    return this.panes.length > 1 ? this.panes[1].el : this.panes[0].el;
  };

  Viewer.prototype.dims = function (which) {
    return this.size[which] || this.size[which === "ref" ? "test" : "ref"] || [800, 600];
  };
  Viewer.prototype.pageHeight = function () { return (this.size.test || this.size.ref || [0, 0])[1]; };

  Viewer.prototype.fitZoom = function () {
    var self = this, z = 1;
    if (!this.panes.length) { return 1; }
    this.panes.forEach(function (pane) {
      var w;
      if (pane.role === "overlay") { w = Math.max(self.dims("ref")[0], self.dims("test")[0]); }
      else { w = self.dims(pane.role)[0]; }
      var avail = pane.el.clientWidth - 2;
      if (avail > 40 && w > 0) { z = Math.min(z, avail / w); }
    });
    return Math.max(0.05, z);
  };

  Viewer.prototype.layout = function () {
    var self = this, z = this.zoom;
    this.host.classList.toggle("zoomed", z > 1.01);
    this.zoomLabel.textContent = this.fit ? "fit " + Math.round(z * 100) + "%" : Math.round(z * 100) + "%";
    this.panes.forEach(function (pane) {
      var W, H;
      var rd = self.dims("ref"), td = self.dims("test");
      if (pane.role === "overlay") { W = Math.max(rd[0], td[0]); H = Math.max(rd[1], td[1]); }
      else { var d = self.dims(pane.role); W = d[0]; H = d[1]; }
      pane.stage.style.width = Math.round(W * z) + "px";
      pane.stage.style.height = Math.round(H * z) + "px";
      pane.layers.forEach(function (l) {
        var s = l.kind === "ref" ? rd : td;
        l.node.style.width = Math.round(s[0] * z) + "px";
        l.node.style.height = Math.round(s[1] * z) + "px";
        var vis = "visible", clip = "none", op = "1";
        if (self.mode === "swipe" && l.kind === "test") { clip = "inset(0 0 0 " + self.swipeX(pane, W * z) + "px)"; }
        if (self.mode === "onion" && l.kind === "test") { op = String(self.onion); }
        if (self.mode === "blink" && l.kind === "test") { vis = self.blinkShowsTest ? "visible" : "hidden"; }
        l.node.style.clipPath = clip;
        l.node.style.opacity = op;
        l.node.style.visibility = vis;
      });
      if (pane.divider) { pane.divider.style.left = self.swipeX(pane, W * z) + "px"; }
      self.drawBoxes(pane);
    });
    if (this.mode === "blink" && this.panes[0]) {
      this.panes[0].tag.textContent = this.blinkShowsTest ? "test" : "reference";
    }
    this.updateWindow();
  };

  /* The swipe line sits at a fraction of the visible part of the pane, so it stays on screen
     when zoomed in. */
  Viewer.prototype.swipeX = function (pane, stageW) {
    var el0 = pane.el;
    var left = Math.max(0, el0.scrollLeft - pane.stage.offsetLeft);
    var visible = Math.min(stageW - left, el0.clientWidth);
    return Math.round(clamp(left + this.swipe * visible, 0, stageW));
  };

  Viewer.prototype.drawBoxes = function (pane) {
    var self = this, z = this.zoom;
    clear(pane.boxes);
    if (!this.showBoxes) { return; }
    this.regions.forEach(function (r, k) {
      if (isBand(r)) { self.drawBand(pane, r, k); return; }
      var b = el("div", { class: "box " + boxClass(r) + (k === self.region ? " focus" : ""), "data-k": k,
        title: (k + 1) + ": " + r.kind + " " + r.w + "×" + r.h, onclick: function () { self.focusRegion(k); } },
        el("span", { class: "num", text: String(k + 1) }));
      place(b, r.x, r.y, r.w, r.h, z, 2);
      pane.boxes.appendChild(b);
    });
    if (pane.role === "ref" || !this.p.recapture) { return; }
    (this.p.recapture.areas || []).forEach(function (a) {
      var b = el("div", { class: "box recap", title: "differs between captures of the same build (re-capture)" });
      b.style.left = Math.round(a.x * z - 1) + "px";
      b.style.top = Math.round(a.y * z - 1) + "px";
      b.style.width = Math.round(a.w * z + 2) + "px";
      b.style.height = Math.round(a.h * z + 2) + "px";
      pane.boxes.appendChild(b);
    });
  };

  function place(node, x, y, w, h, z, pad) {
    node.style.left = Math.round(x * z - pad) + "px";
    node.style.top = Math.round(y * z - pad) + "px";
    node.style.width = Math.round(w * z + 2 * pad) + "px";
    node.style.height = Math.round(h * z + 2 * pad) + "px";
  }

  /* An inserted or removed band, in both images: the rows themselves in the image that has
     them (test for inserted, reference for removed), and in the other image the seam where
     they open or where the gap closed. The overlay views are in test-image pixels. */
  Viewer.prototype.drawBand = function (pane, r, k) {
    var self = this, z = this.zoom, cols = isColumns(r);
    var inRef = pane.role === "ref";
    var has = r.kind === "inserted" ? !inRef : inRef;
    var refW = this.dims("ref")[0], refH = this.dims("ref")[1];
    var b = el("div", { class: "box band " + boxClass(r) + (has ? "" : " seam") + (k === self.region ? " focus" : ""),
      "data-k": k, "data-band": has ? "rows" : "seam", title: (k + 1) + ": " + bandText(r),
      onclick: function () { self.focusRegion(k); } },
      el("span", { class: "num", text: String(k + 1) }),
      has ? null : el("span", { class: "seam-label", text: bandText(r) }));
    if (cols) {
      if (has && inRef) { place(b, r.x + 1, 0, Math.max(refW - r.x - 1, 1), refH, z, 2); }
      else if (has) { place(b, r.x, r.y, r.w, r.h, z, 2); }
      else { place(b, inRef ? refW : r.x + 1, 0, 0, inRef ? refH : r.h, z, 1); }
    } else {
      var y = inRef ? (r.ref_y !== undefined && r.ref_y !== null ? r.ref_y : r.y) : r.y;
      var w = inRef ? refW : r.w;
      if (has) { place(b, inRef ? 0 : r.x, y, w, inRef ? (r.ref_h || 1) : r.h, z, 2); }
      else { place(b, inRef ? 0 : r.x, y, w, 0, z, 1); }
    }
    pane.boxes.appendChild(b);
  };

  Viewer.prototype.renderMinimap = function () {
    var self = this, mm = this.minimap;
    clear(mm);
    var H = this.pageHeight();
    if (!H) { return; }
    // The page itself, squeezed to the strip's height: its shape says where a box is.
    var page = this.test || this.ref;
    if (page) { mm.appendChild(img(page, "mm-page", "")); }
    this.regions.forEach(function (r, k) {
      var m = el("div", { class: "mk " + boxClass(r), "data-k": k, title: (k + 1) + ": " + r.kind + " at y " + r.y,
        onclick: function (e) { e.stopPropagation(); self.focusRegion(k); } });
      m.style.top = (100 * r.y / H) + "%";
      m.style.height = Math.max(0.4, 100 * Math.max(r.h, 1) / H) + "%";
      mm.appendChild(m);
    });
    this.win = el("div", { class: "win" });
    mm.appendChild(this.win);
    this.updateWindow();
  };

  Viewer.prototype.updateWindow = function () {
    var pane = this.mainPane();
    var H = this.pageHeight() * this.zoom;
    if (!this.win || !pane || !H) { return; }
    this.win.style.top = clamp(100 * pane.scrollTop / H, 0, 100) + "%";
    this.win.style.height = clamp(100 * pane.clientHeight / H, 0, 100) + "%";
  };

  Viewer.prototype.sync = function (src) {
    if (this.syncing) { return; }
    this.syncing = true;
    this.panes.forEach(function (pane) {
      if (pane !== src) { pane.el.scrollTop = src.el.scrollTop; pane.el.scrollLeft = src.el.scrollLeft; }
    });
    var self = this;
    requestAnimationFrame(function () { self.syncing = false; });
  };

  Viewer.prototype.centerOf = function (pane) {
    return [(pane.scrollLeft + pane.clientWidth / 2) / this.zoom, (pane.scrollTop + pane.clientHeight / 2) / this.zoom];
  };

  /* Show box (natural px) in every pane: centred when it fits, else from its top-left corner. */
  Viewer.prototype.scrollToBox = function (r) {
    var self = this, z = this.zoom, m = 24;
    this.syncing = true;
    this.panes.forEach(function (pane) {
      var y = r.y, h = r.h;
      if (pane.role === "ref" && r.ref_y !== undefined && r.ref_y !== null) { y = r.ref_y; h = r.ref_h || 1; }
      var pw = pane.el.clientWidth, ph = pane.el.clientHeight;
      pane.el.scrollLeft = r.w * z + 2 * m <= pw ? (r.x + r.w / 2) * z - pw / 2 : r.x * z - m;
      pane.el.scrollTop = h * z + 2 * m <= ph ? (y + h / 2) * z - ph / 2 : y * z - m;
    });
    requestAnimationFrame(function () { self.syncing = false; });
    this.layout();
  };

  Viewer.prototype.scrollToCenter = function (cx, cy, refCy) {
    var self = this;
    this.syncing = true;
    this.panes.forEach(function (pane) {
      var y = pane.role === "ref" && refCy !== undefined ? refCy : cy;
      pane.el.scrollLeft = cx * self.zoom - pane.el.clientWidth / 2;
      pane.el.scrollTop = y * self.zoom - pane.el.clientHeight / 2;
    });
    requestAnimationFrame(function () { self.syncing = false; });
    this.updateWindow();
  };

  Viewer.prototype.setZoom = function (z, keepCenter) {
    var pane = this.mainPane();
    var c = pane ? this.centerOf(pane) : null;
    this.fit = false;
    this.zoom = clamp(z, 0.05, 8);
    this.layout();
    if (c && keepCenter !== false) { this.scrollToCenter(c[0], c[1]); }
  };
  Viewer.prototype.zoomBy = function (f) { this.setZoom(this.zoom * f); };
  Viewer.prototype.fitNow = function () {
    var pane = this.mainPane();
    var c = pane ? this.centerOf(pane) : null;
    this.fit = true;
    this.zoom = this.fitZoom();
    this.layout();
    if (c) { this.scrollToCenter(c[0], c[1]); }
  };

  /* Scroll to region k and zoom so it fills a good part of the view (never below fit). */
  Viewer.prototype.focusRegion = function (k, quiet, keepZoom) {
    var r = this.regions[k];
    if (!r) { return; }
    this.region = k;
    var pane = this.mainPane();
    if (pane && !keepZoom) {
      // At least actual size (the pixels are what a reviewer judges), at most 3x, and the
      // region filling a good part of the pane when it is small.
      var fit = this.fitZoom();
      var pw = pane.clientWidth, ph = pane.clientHeight;
      var want = Math.min(pw * 0.85 / (r.w + 24), ph * 0.6 / (r.h + 40));
      var z = clamp(want, 1, 3);
      if (r.w * z + 48 > pw || r.h * z + 48 > ph) {
        // Too big for the pane at actual size: shrink a little to show all of it, else start
        // at its top-left corner at actual size.
        var all = Math.min((pw - 48) / Math.max(r.w, 1), (ph - 48) / Math.max(r.h, 1));
        if (all >= 0.75) { z = all; }
      }
      z = Math.max(fit, Math.round(z * 100) / 100);
      this.fit = Math.abs(z - fit) < 1e-3;
      this.zoom = z;
    }
    this.layout();
    this.scrollToBox(r);
    this.regionLabel.textContent = "region " + (k + 1) + "/" + this.regions.length;
    var mks = this.minimap.querySelectorAll(".mk");
    for (var i = 0; i < mks.length; i++) { mks[i].classList.toggle("focus", i === k); }
    this.cards.forEach(function (c, i) {
      c.setAttribute("aria-current", String(i === k));
      if (i === k) { c.scrollIntoView({ block: "nearest" }); }
    });
    if (!quiet) { updateHash(); }
  };

  /* The region a pair opens on: the first that counts (after a re-capture, dynamic ones may
     come before it); -1 when there is none. */
  Viewer.prototype.firstRegion = function () {
    if (!this.regions.length) { return -1; }
    var k = this.regions.findIndex(significant);
    return k < 0 ? 0 : k;
  };

  /* Scroll (never zoom) so region k is in view, a third of the way down when it has to move. */
  Viewer.prototype.reveal = function (k) {
    var r = this.regions[k], self = this;
    if (!r) { return; }
    this.syncing = true;
    this.panes.forEach(function (pane) {
      var y = r.y, h = Math.max(r.h, 1);
      if (pane.role === "ref" && r.ref_y !== undefined && r.ref_y !== null) { y = r.ref_y; h = Math.max(r.ref_h || 1, 1); }
      var top = y * self.zoom, bottom = (y + h) * self.zoom, ph = pane.el.clientHeight;
      if (top < pane.el.scrollTop || bottom > pane.el.scrollTop + ph) {
        pane.el.scrollTop = Math.max(0, top - ph / 3);
      }
    });
    requestAnimationFrame(function () { self.syncing = false; });
    this.updateWindow();
  };

  /* z: zoom in on the chosen region (the first one when none is chosen), or back to the whole width. */
  Viewer.prototype.toggleZoom = function () {
    if (!this.regions.length) { if (this.fit) { this.setZoom(1); } else { this.fitNow(); } return; }
    if (this.fit || this.region < 0) { this.focusRegion(this.region >= 0 ? this.region : this.firstRegion()); return; }
    var k = this.region;
    this.fit = true;
    this.zoom = this.fitZoom();
    this.layout();
    this.reveal(k);
  };

  Viewer.prototype.stepRegion = function (d) {
    var n = this.regions.length;
    if (!n) { return; }
    var k = this.region < 0 ? (d > 0 ? 0 : n - 1) : (this.region + d + n) % n;
    this.focusRegion(k);
  };

  Viewer.prototype.startBlink = function () {
    var self = this;
    this.blinkOn = true;
    if (this.blinkBtn) { this.blinkBtn.textContent = "pause"; }
    this.timer = setInterval(function () { self.blinkShowsTest = !self.blinkShowsTest; self.layout(); }, 600);
  };
  Viewer.prototype.flip = function () {
    if (this.mode !== "blink") { return; }
    if (this.blinkOn) {
      clearInterval(this.timer);
      this.blinkOn = false;
      if (this.blinkBtn) { this.blinkBtn.textContent = "play"; }
    }
    this.blinkShowsTest = !this.blinkShowsTest;
    this.layout();
  };

  // ---------------------------------------------------------------- hash (deep links)
  function updateHash() {
    var p = pairs[state.sel];
    if (!p) { return; }
    var h = "#pair=" + p.rank + "&view=" + state.view;
    if (state.viewer && state.viewer.region >= 0) { h += "&region=" + (state.viewer.region + 1); }
    try { history.replaceState(null, "", h); } catch (e) { /* some file:// setups refuse: harmless */ }
  }
  function readHash() {
    var out = {};
    (location.hash || "").replace(/^#/, "").split("&").forEach(function (kv) {
      var m = kv.split("=");
      if (m.length === 2) { out[m[0]] = decodeURIComponent(m[1]); }
    });
    return out;
  }

  // ---------------------------------------------------------------- review state
  /* Per pair: "seen", "accepted" or "needs work", kept in this browser under the analysis
     digest and, when `reviewer serve` serves the page, on its disk next to review.json so a
     colleague who opens the page sees them (the server is then the one that counts). */
  var MARKS = [["seen", "Seen", "s"], ["accepted", "Accepted", "a"], ["needs-work", "Needs work", "w"]];
  var MARK_SIGN = { seen: "•", accepted: "✓", "needs-work": "✗" };
  var review = { marks: {}, key: "reviewer:review-state:" + (data.digest || "no-digest"), served: false };

  function validMarks(obj) {
    var out = {};
    if (!obj || typeof obj !== "object") { return out; }
    pairs.forEach(function (p) {
      var m = obj[p._key];
      if (MARKS.some(function (x) { return x[0] === m; })) { out[p._key] = m; }
    });
    return out;
  }
  function loadLocalMarks() {
    try { review.marks = validMarks(JSON.parse(window.localStorage.getItem(review.key) || "{}")); }
    catch (e) { review.marks = {}; }
  }
  function saveLocalMarks() {
    try { window.localStorage.setItem(review.key, JSON.stringify(review.marks)); }
    catch (e) { /* storage off (private mode, policy): the marks last as long as the page */ }
  }
  function say(text) {
    var status = document.getElementById("action-status");
    if (status) { status.textContent = text; }
  }
  function toReview(p) { return p.verdict === "changed" || p.verdict === "error"; }

  function stateRequest(method, body) {
    return fetch(actions.state_endpoint, {
      method: method, credentials: "same-origin", cache: "no-store", redirect: "error",
      headers: method === "POST" ? { "Content-Type": "application/json", "X-Reviewer-Session": actions.secret || "" } : {},
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) {
      return r.json().catch(function () { return { ok: false, message: "HTTP " + r.status }; });
    });
  }

  function loadServerMarks() {
    if (!actions.state_endpoint) { return; }
    stateRequest("GET").then(function (res) {
      if (!res || !res.ok || res.digest !== data.digest) {
        say("The server has no review marks for this analysis: marks are kept in this browser only.");
        return;
      }
      review.served = true;
      review.marks = validMarks(res.pairs);
      saveLocalMarks();
      refreshMarks();
    }).catch(function (err) {
      say("Could not load the shared review marks (" + String(err && err.message || err) + "): marks are kept in " +
        "this browser only.");
    });
  }

  /* Set (or, pressing the same key again, clear) the mark of pair p. */
  function setMark(p, mark) {
    if (!p) { return; }
    var before = review.marks[p._key];
    var next = before === mark ? null : mark;
    if (next) { review.marks[p._key] = next; } else { delete review.marks[p._key]; }
    saveLocalMarks();
    refreshMarks();
    if (!review.served) { return; }
    stateRequest("POST", { digest: data.digest, pair: p._key, state: next }).then(function (res) {
      if (res && res.ok) {
        review.marks = validMarks(res.pairs);
        saveLocalMarks();
        refreshMarks();
        return;
      }
      throw new Error(res && res.message || "refused");
    }).catch(function (err) {
      if (before) { review.marks[p._key] = before; } else { delete review.marks[p._key]; }
      saveLocalMarks();
      refreshMarks();
      say("✗ The mark was not saved on the server: " + String(err && err.message || err));
    });
  }

  function markButtons(p) {
    return el("span", { class: "seg marks", role: "group", "aria-label": "Review mark" }, MARKS.map(function (m) {
      return el("button", { class: "btn mark-" + m[0], type: "button", id: "mark-" + m[0], "data-mark": m[0],
        "aria-pressed": String(review.marks[p._key] === m[0]), title: m[1] + " (" + m[2] + "); press again to clear",
        onclick: function () { setMark(p, m[0]); } }, m[1] + " ", el("kbd", { text: m[2] }));
    }));
  }

  function refreshMarks() {
    var need = pairs.filter(toReview);
    var done = need.filter(function (p) { return review.marks[p._key]; }).length;
    var counts = { seen: 0, accepted: 0, "needs-work": 0 };
    pairs.forEach(function (p) { var m = review.marks[p._key]; if (m) { counts[m]++; } });
    if (ui.progress) {
      ui.progress.textContent = (need.length ? "reviewed " + done + "/" + need.length : "nothing to review") +
        (counts["needs-work"] ? " · " + counts["needs-work"] + " needs work" : "");
      ui.progress.title = counts.seen + " seen, " + counts.accepted + " accepted, " + counts["needs-work"] +
        " needs work. Changed and error pairs count. s: seen, a: accepted, w: needs work, r: next unreviewed";
      ui.progress.classList.toggle("bad", counts["needs-work"] > 0);
      ui.progress.classList.toggle("done", need.length > 0 && done === need.length && !counts["needs-work"]);
    }
    VERDICTS.forEach(function (v) {
      var g = groups[v];
      if (!g) { return; }
      Object.keys(g.rows).forEach(function (i) {
        var row = g.rows[i], m = review.marks[pairs[i]._key] || "";
        if (row.getAttribute("data-review") === m) { return; }
        row.setAttribute("data-review", m);
        var rv = row.querySelector(".rv");
        rv.textContent = m ? MARK_SIGN[m] : "";
        rv.title = m ? MARKS.filter(function (x) { return x[0] === m; })[0][1] : "";
      });
    });
    var cur = pairs[state.sel];
    var btns = document.querySelectorAll("#detail .marks [data-mark]");
    for (var i = 0; i < btns.length; i++) {
      btns[i].setAttribute("aria-pressed", String(!!cur && review.marks[cur._key] === btns[i].getAttribute("data-mark")));
    }
  }

  /* r: the next changed or error pair (in rank order, after the selected one, wrapping) with no mark. */
  function nextUnreviewed() {
    var nav = navigable().filter(function (i) { return toReview(pairs[i]) && !review.marks[pairs[i]._key]; });
    if (!nav.length) {
      var left = pairs.filter(function (p) { return toReview(p) && !review.marks[p._key]; }).length;
      say(left ? left + " unreviewed pair(s) are hidden by the filter or a closed group." :
        "Every changed and error pair has a review mark.");
      return;
    }
    var after = nav.filter(function (i) { return pairs[i].rank > (pairs[state.sel] || { rank: 0 }).rank; });
    select(after.length ? after[0] : nav[0]);
  }

  // ---------------------------------------------------------------- help
  var KEYS = [
    ["j", "next pair"], ["k", "previous pair"], ["n", "next region (scrolls and zooms to it)"], ["p", "previous region"],
    ["1 … 5", "side by side, swipe, onion skin, blink, heat map"], ["b", "blink: pause and flip reference / test"],
    ["z", "zoom in on the region / back to the whole width"],
    ["+  −", "zoom in / out"], ["f", "fit width"], ["0", "actual size (100%)"], ["x", "show / hide region boxes"],
    ["s", "mark the pair seen (again: clear the mark)"], ["a", "mark the pair accepted"],
    ["w", "mark the pair needs work (the release cannot be approved from the served page)"],
    ["r", "next unreviewed changed or error pair"],
    ["/", "filter by label, URL, selector"], ["u", "open / close the unchanged pairs"], ["?", "this help"],
    ["Esc", "close this help / clear and leave the filter box"]
  ];
  function toggleHelp(force) {
    var open = document.getElementById("help");
    if (open) { open.remove(); return; }
    if (force === false) { return; }
    var table = el("table", null, KEYS.map(function (k) {
      return el("tr", null, el("td", null, k[0].split(" ").map(function (t) { return t === "…" ? " … " : el("kbd", { text: t }); })),
        el("td", { text: k[1] }));
    }));
    var back = el("div", { class: "modal-back", id: "help", onclick: function (e) { if (e.target === back) { back.remove(); } } },
      el("div", { class: "modal help", role: "dialog", "aria-modal": "true", "aria-labelledby": "help-title" },
        el("h2", { id: "help-title", text: "Keyboard shortcuts" }), table,
        el("p", { class: "muted", text: "Pairs are ranked: real changes first (highest score first), then errors, " +
          "then rendering noise, then unchanged pairs. Click a box, a region card or the strip at the right of the " +
          "image to jump to a change. In swipe view, drag across the image." }),
        el("div", { class: "buttons" }, el("button", { class: "btn", type: "button", onclick: function () { back.remove(); },
          text: "Close" }))));
    document.body.appendChild(back);
    back.querySelector("button").focus();
  }

  // ---------------------------------------------------------------- keyboard
  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var t = e.target;
    var typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT");
    if (e.key === "Escape") {
      if (document.getElementById("help")) { toggleHelp(false); e.preventDefault(); return; }
      if (document.getElementById("action-dialog")) { closeAction(); e.preventDefault(); return; }
      if (t === ui.search && (ui.search.value || state.filters.text)) {
        // Esc empties the box; the filter it set must go with it, or the list stays cut down
        // with nothing on screen saying so.
        ui.cancelSearch();
        ui.search.value = "";
        state.filters.text = "";
        applyFilters();
      }
      if (typing) { t.blur(); }
      return;
    }
    if (typing || document.getElementById("action-dialog")) { return; }
    var v = state.viewer;
    var k = e.key;
    if (document.getElementById("help") && k !== "?") { return; }
    var handled = true;
    if (k === "j") { step(1); }
    else if (k === "k") { step(-1); }
    else if (k === "n" && v) { v.stepRegion(1); }
    else if (k === "p" && v) { v.stepRegion(-1); }
    else if (k >= "1" && k <= "5" && v) { v.setView(VIEWS[Number(k) - 1][0]); }
    else if (k === "b" && v) { if (v.mode !== "blink") { v.setView("blink"); } else { v.flip(); } }
    else if ((k === "+" || k === "=") && v) { v.zoomBy(1.5); }
    else if (k === "-" && v) { v.zoomBy(1 / 1.5); }
    else if (k === "f" && v) { v.fitNow(); }
    else if (k === "0" && v) { v.setZoom(1); }
    else if (k === "z" && v) { v.toggleZoom(); }
    else if (k === "x" && v) { v.boxToggle.checked = !v.boxToggle.checked; v.showBoxes = v.boxToggle.checked; v.layout(); }
    else if (k === "/") { ui.search.focus(); ui.search.select(); }
    else if (k === "u") { toggleGroup("unchanged"); }
    else if (k === "s") { setMark(pairs[state.sel], "seen"); }
    else if (k === "a") { setMark(pairs[state.sel], "accepted"); }
    else if (k === "w") { setMark(pairs[state.sel], "needs-work"); }
    else if (k === "r") { nextUnreviewed(); }
    else if (k === "?") { toggleHelp(); }
    else { handled = false; }
    if (handled) { e.preventDefault(); }
  }

  // ---------------------------------------------------------------- actions (reviewer serve)
  function buildActions(host) {
    var box = el("span", { class: "actions", id: "actions" });
    var enabled = !!actions.enabled;
    var why = actions.why_disabled || "";
    [["approve", "Approve", "primary"], ["hold", "Hold", "warn"], ["reject", "Reject", "danger"]].forEach(function (a) {
      box.appendChild(el("button", { class: "btn " + a[2], type: "button", id: "action-" + a[0], disabled: !enabled,
        title: enabled ? ((actions.describe || {})[a[0]] || a[1]) : why, onclick: function () { openAction(a[0], a[1]); },
        text: a[1] }));
    });
    if (!enabled && why) { box.appendChild(el("span", { class: "muted", id: "actions-why", title: why, text: "ⓘ" })); }
    if (actions.project || actions.tag) {
      box.insertBefore(el("span", { class: "muted mono", text: (actions.project || "") + (actions.tag ? " @ " + actions.tag : "") }),
        box.firstChild);
    }
    host.appendChild(box);
  }

  function closeAction() {
    var d = document.getElementById("action-dialog");
    if (d) { d.remove(); }
  }

  function openAction(action, label) {
    closeAction();
    var hold = (data.decision || {}).action !== "approve";
    var force = action === "approve" && hold;
    var needReason = action !== "approve" || force;
    var text = el("textarea", { id: "action-reason", "aria-label": "Reason", maxlength: "2000",
      placeholder: needReason ? "required" : "optional" });
    var result = el("div", { class: "result", id: "action-result", hidden: true, role: "status" });
    var go = el("button", { class: "btn " + (action === "approve" ? "primary" : action === "hold" ? "warn" : "danger"),
      type: "button", id: "action-confirm", text: label });
    var describe = (actions.describe || {})[action] || "";
    var flagged = action === "approve" ? pairs.filter(function (p) { return review.marks[p._key] === "needs-work"; }) : [];
    var back = el("div", { class: "modal-back", id: "action-dialog" },
      el("div", { class: "modal", role: "dialog", "aria-modal": "true", "aria-labelledby": "action-title" },
        el("h2", { id: "action-title", text: label + " " + (actions.tag || "this release") +
          (actions.project ? " of " + actions.project : "") + "?" }),
        describe ? el("p", { class: "wrap", text: describe }) : null,
        flagged.length ? el("p", { class: "notice hold", id: "needs-work-notice", text: flagged.length +
          " pair(s) marked “needs work”: " + flagged.slice(0, 5).map(function (p) { return p.label + " [" + p.viewport + "]"; })
          .join("; ") + (flagged.length > 5 ? "; …" : "") + ". Approve is refused until those marks are cleared." }) : null,
        force ? el("p", { class: "notice hold", text: "The review says HOLD (" + ((data.counts || {}).changed || 0) +
          " changed, " + ((data.counts || {}).error || 0) + " error). Approving anyway overrides it: give the reason; " +
          "it is written to the audit log." }) : null,
        el("label", { for: "action-reason", text: needReason ? "Reason (required)" : "Reason (optional)" }), text,
        result,
        el("div", { class: "buttons" },
          el("button", { class: "btn", type: "button", onclick: closeAction, text: "Cancel" }), go)));
    go.addEventListener("click", function () {
      var reason = text.value.trim();
      if (needReason && !reason) {
        showResult(result, false, "Give a reason: it goes into the audit log.");
        text.focus();
        return;
      }
      go.disabled = true;
      showResult(result, true, "Sending…");
      postAction({ action: action, reason: reason || null, force: force, digest: data.digest || null })
        .then(function (res) {
          showResult(result, !!res.ok, (res.message || (res.ok ? "done" : "failed")) + (res.audit ? "\naudit: " + res.audit : ""));
          go.disabled = !!res.ok;
          var status = document.getElementById("action-status");
          if (status) { status.textContent = (res.ok ? "✓ " : "✗ ") + (res.message || ""); }
        })
        .catch(function (err) {
          showResult(result, false, "The request failed: " + String(err && err.message || err));
          go.disabled = false;
        });
    });
    document.body.appendChild(back);
    text.focus();
  }

  function showResult(node, ok, msg) {
    node.hidden = false;
    node.className = "result " + (ok ? "ok" : "bad");
    node.textContent = msg;
  }

  function postAction(body) {
    return fetch(actions.endpoint, {
      method: "POST", credentials: "same-origin", cache: "no-store", redirect: "error",
      headers: { "Content-Type": "application/json", "X-Reviewer-Session": actions.secret || "" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return { ok: false, message: "HTTP " + r.status }; });
    });
  }

  // ---------------------------------------------------------------- start
  function start() {
    loadLocalMarks();
    buildHeader();
    buildList();
    document.addEventListener("keydown", onKey);
    var h = readHash();
    var start = -1;
    if (h.pair) {
      pairs.forEach(function (p) { if (String(p.rank) === h.pair) { start = p._i; } });
    }
    if (h.view && VIEWS.some(function (v) { return v[0] === h.view; })) { state.view = h.view; }
    if (start < 0) {
      var nav = navigable();
      start = nav.length ? nav[0] : -1;
    }
    if (start >= 0) {
      select(start, { region: h.region ? Number(h.region) - 1 : undefined, view: state.view });
    } else {
      showNothing();
    }
    refreshMarks();
    loadServerMarks();
    document.documentElement.setAttribute("data-ready", "true");
    if (window.performance && performance.mark) { performance.mark("review-ready"); }
  }

  start();
})();
