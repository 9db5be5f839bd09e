"""Benchmark: `reviewer analyze` on a whole release-sized report against odiff, pixelmatch and
Pillow's decoding, on the same pairs, in the same run.

    (cd benchmarks && npm install)              # odiff-bin and pixelmatch (once; `npm ci` refuses
                                                # the lock: odiff-bin lists platform packages the
                                                # registry does not serve)
    .venv/bin/python benchmarks/run.py          # build the report if needed, 5 rounds
    .venv/bin/python benchmarks/run.py --rounds 3 --markdown benchmarks/RESULTS.md

Per round, in this order (the order rotates between rounds so none always runs first):
  reviewer   `reviewer analyze REPORT --out NEW_DIR -q` (both cores; the exit code 3 = hold is expected),
             its process tree's memory polled every 10 ms;
  cached     the same command again into the same folder: every pair comes from the cache;
  odiff      the odiff binary from npm `odiff-bin`, `--aa` and a diff image, one process per
             pair, pairs in sequence (the native binary directly, not the node wrapper);
  pixelmatch `node pixelmatch_pair.mjs` (pngjs + pixelmatch, diff image), one process per pair;
  decode     Pillow opening and loading both PNGs of every pair, one process, pairs in sequence:
             the floor for anything that has to look at the pixels.

Medians over the rounds are reported, with the ratios against odiff and the targets of
issue 5. Results go to benchmarks/results/latest.json (and a markdown table with --markdown).
Pairs: every test of the report whose two images exist (error tests are skipped by all).

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed from the environment of the commands timed
here (the machine note: they slow a current numpy); tests and CI keep them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
REVIEWER = ROOT / ".venv" / "bin" / "reviewer"
ODIFF = HERE / "node_modules" / "@odiff" / "linux-x64" / "odiff"
PIXELMATCH = HERE / "pixelmatch_pair.mjs"
DEFAULT_REPORT = HERE / "work" / "report" / "backstop_data"
BYTES_PER_PIXEL_TARGET = 40


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    return env


@dataclass
class PairFiles:
    name: str
    reference: Path
    test: Path
    pixels: int  # the larger image of the two, width x height
    identical: bool


def png_size(path: Path) -> tuple[int, int]:
    with path.open("rb") as fh:
        head = fh.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def report_pairs(report: Path) -> list[PairFiles]:
    sys.path.insert(0, str(ROOT))
    from reviewer.sources.local import load_report

    out = []
    for p in load_report(report).pairs:
        if p.reference is None or p.test is None or not p.reference.is_file() or not p.test.is_file():
            continue
        if p.backstop_error or p.path_problem:
            continue
        (w1, h1), (w2, h2) = png_size(p.reference), png_size(p.test)
        out.append(PairFiles(p.file, p.reference, p.test, max(w1 * h1, w2 * h2),
                             p.reference.read_bytes() == p.test.read_bytes()))
    return out


# ---------------------------------------------------------------- memory of a process tree


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                kids += [int(k) for k in fh.read().split()]
    except OSError:
        pass
    return kids


def _status_kb(pid: int) -> tuple[int, int]:
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class TreeMemory:
    """Polls a process and its descendants: peak of the summed RSS and PSS, and each process's
    own peak (VmHWM); the sum of those peaks bounds the tree's peak from above."""

    root: int
    interval: float = 0.02  # status every 20 ms, PSS every 100 ms
    peak_rss_kb: int = 0
    peak_pss_kb: int = 0
    hwm_kb: dict[int, int] = field(default_factory=dict)
    _polls: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> TreeMemory:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            pids, todo = [], [self.root]
            while todo:
                pid = todo.pop()
                pids.append(pid)
                todo += _children(pid)
            rss_sum = pss_sum = 0
            with_pss = self._polls % 5 == 0  # smaps_rollup costs more: every 5th poll
            for pid in pids:
                rss, hwm = _status_kb(pid)
                if hwm:
                    self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), hwm)
                rss_sum += rss
                if with_pss:
                    pss_sum += _pss_kb(pid)
            self.peak_rss_kb = max(self.peak_rss_kb, rss_sum)
            self.peak_pss_kb = max(self.peak_pss_kb, pss_sum)
            self._polls += 1
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------- the contestants


def run_reviewer(report: Path, out: Path, workers: int = 0) -> dict[str, Any]:
    cmd = [str(REVIEWER), "analyze", str(report), "--out", str(out), "-q"]
    if workers:
        cmd += ["--workers", str(workers)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=bench_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    mem = TreeMemory(proc.pid).start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    mem.stop()
    stdout, stderr = proc.communicate()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3):
        raise RuntimeError(f"reviewer analyze exited {code}: {stderr.decode()[-2000:]}")
    # wait4 of the parent reports the parent and the workers it waited for (a pool's processes)
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "cpu": cpu, "peak_rss_mb": mem.peak_rss_kb / 1024, "peak_pss_mb": mem.peak_pss_kb / 1024,
            "sum_of_process_peaks_mb": sum(mem.hwm_kb.values()) / 1024, "processes": len(mem.hwm_kb),
            "decision": (stdout.decode().strip().splitlines() or [""])[-1]}


def run_per_pair(pairs: list[PairFiles], make_cmd: Any, ok_codes: tuple[int, ...]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-diff-") as tmp:
        started = time.perf_counter()
        for p in pairs:
            cmd = make_cmd(p, Path(tmp) / "diff.png")
            code = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=bench_env()).returncode
            if code not in ok_codes:
                raise RuntimeError(f"{cmd[0]} failed on {p.name} with exit code {code}")
        return {"wall": time.perf_counter() - started}


def run_odiff(pairs: list[PairFiles]) -> dict[str, Any]:
    # 0 same, 21 layout differs, 22 pixels differ
    return run_per_pair(pairs, lambda p, d: [str(ODIFF), "--aa", str(p.reference), str(p.test), str(d)], (0, 21, 22))


def run_pixelmatch(pairs: list[PairFiles]) -> dict[str, Any]:
    return run_per_pair(pairs, lambda p, d: ["node", str(PIXELMATCH), str(p.reference), str(p.test), str(d)], (0, 1))


DECODE_SNIPPET = """
import json, sys, time
from PIL import Image
pairs = json.load(open(sys.argv[1]))
times = {}
started = time.perf_counter()
for name, ref, test in pairs:
    t = time.perf_counter()
    for path in (ref, test):
        with Image.open(path) as im:
            im.load()
    times[name] = time.perf_counter() - t
print(json.dumps({"wall": time.perf_counter() - started, "pairs": times}))
"""


def run_decode(pairs: list[PairFiles]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump([(p.name, str(p.reference), str(p.test)) for p in pairs], fh)
    try:
        out = subprocess.run([str(PYTHON), "-c", DECODE_SNIPPET, fh.name], capture_output=True, check=True,
                             env=bench_env()).stdout
    finally:
        os.unlink(fh.name)
    result: dict[str, Any] = json.loads(out)
    return result


def hash_seconds(pairs: list[PairFiles]) -> dict[str, float]:
    """Time to sha256 both files of each byte-identical pair (the floor for those pairs)."""
    out = {}
    for p in pairs:
        if p.identical:
            t = time.perf_counter()
            sha256(p.reference), sha256(p.test)
            out[p.name] = time.perf_counter() - t
    return out


# ---------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    versions = subprocess.run([str(PYTHON), "-c", "import numpy, PIL, skimage, scipy; print(numpy.__version__, "
                               "PIL.__version__, skimage.__version__, scipy.__version__)"],
                              capture_output=True, text=True).stdout.split()
    odiff_run = subprocess.run([str(ODIFF), "--version"], capture_output=True, text=True)
    odiff_version = (odiff_run.stdout + odiff_run.stderr).strip().split(" - ")[0]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    pm = json.loads((HERE / "node_modules" / "pixelmatch" / "package.json").read_text())["version"]
    return {"cpu": model, "cores": os.cpu_count(), "memory_gb": round(mem_gb, 1), "os": platform.platform(),
            "python": platform.python_version(), "numpy": versions[0] if versions else "?",
            "pillow": versions[1] if len(versions) > 1 else "?", "odiff": odiff_version, "node": node,
            "pixelmatch": pm}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def kind_of_pair(name: str, manifest: dict[str, Any]) -> str:
    return manifest[name]["variant"] if name in manifest else "fixture (real BackstopJS)"


def summarise(pairs: list[PairFiles], rounds: list[dict[str, Any]], report: Path, out_dir: Path) -> dict[str, Any]:
    steps = ("reviewer", "cached", "odiff", "pixelmatch", "decode")
    med = {k: median([r[k]["wall"] for r in rounds]) for k in steps}
    largest = max(p.pixels for p in pairs)
    budget = BYTES_PER_PIXEL_TARGET * largest / 1024**2
    mem = {k: max(r["reviewer"][k] for r in rounds)
           for k in ("peak_rss_mb", "peak_pss_mb", "sum_of_process_peaks_mb")}
    cpu = median([r["reviewer"]["cpu"] for r in rounds])
    # Per pair: reviewer's own time for the pair (hashing, decoding, analysis, page images),
    # from review.json of the uncached runs, against Pillow decoding the same two files.
    seconds = {n: median([r["reviewer"]["seconds"][n] for r in rounds]) for n in rounds[0]["reviewer"]["seconds"]}
    decode = {n: median([r["decode"]["pairs"][n] for r in rounds]) for n in rounds[0]["decode"]["pairs"]}
    ratios = sorted((seconds[n] / decode[n] if decode[n] > 0 else 0.0, n) for n in decode if n in seconds)
    review = json.loads((out_dir / "review.json").read_text())
    verdicts = {p["file"]: p["verdict"] for p in review["pairs"]}
    manifest_path = report / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    disagree = sorted(n for n, e in manifest.items() if verdicts.get(n) != e["expected"])
    by_kind: dict[str, list[float]] = {}
    for r, n in ratios:
        by_kind.setdefault(kind_of_pair(n, manifest), []).append(r)
    hashes = {n: median([r["hash"][n] for r in rounds]) for n in rounds[0]["hash"]}
    identical = sorted((seconds[n] / hashes[n] if hashes[n] else 0.0, n) for n in hashes if n in seconds)
    return {
        "pairs": len(pairs),
        "pixels_total": sum(p.pixels for p in pairs),
        "largest_pair_pixels": largest,
        "rounds": len(rounds),
        "median_wall_s": med,
        "ratio_reviewer_to_odiff": med["reviewer"] / med["odiff"],
        "ratio_reviewer_to_pixelmatch": med["reviewer"] / med["pixelmatch"],
        "ratio_reviewer_to_decode_floor": med["reviewer"] / med["decode"],
        "reviewer_cpu_s": cpu,
        "cores_used": cpu / med["reviewer"],
        "memory": {**mem, "budget_mb": budget,
                   "bytes_per_pixel_of_largest_pair": mem["peak_rss_mb"] * 1024**2 / largest},
        "per_pair": {"median_ratio": median([r for r, _ in ratios]),
                     "p90_ratio": ratios[int(0.9 * (len(ratios) - 1))][0],
                     "max_ratio": ratios[-1][0], "worst": ratios[-5:], "over_2x": sum(r > 2 for r, _ in ratios),
                     "count": len(ratios),
                     "by_kind": {k: {"pairs": len(v), "median": median(v), "max": max(v),
                                     "over_2x": sum(x > 2 for x in v)} for k, v in sorted(by_kind.items())}},
        "identical_pairs": {"count": len(identical), "median_ratio_to_hashing": median([r for r, _ in identical]),
                            "max_ratio_to_hashing": identical[-1][0] if identical else None},
        "verdicts_disagreeing_with_generator": disagree,
    }


def markdown(summary: dict[str, Any], info: dict[str, Any]) -> str:
    m = summary["median_wall_s"]
    mem = summary["memory"]
    pp = summary["per_pair"]
    same = summary["identical_pairs"]

    def ok(cond: bool) -> str:
        return "met" if cond else "**not met**"

    def row(what: str, key: str) -> str:
        return f"| {what} | {m[key]:.2f} | {m['reviewer'] / m[key]:.2f} |"

    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GiB; {info['os']}; "
        f"Python {info['python']}, numpy {info['numpy']}, Pillow {info['pillow']}; {info['odiff']}; "
        f"node {info['node']}, pixelmatch {info['pixelmatch']}.",
        "",
        f"Report: {summary['pairs']} pairs with both images, {summary['pixels_total'] / 1e6:.0f} Mpx in all, "
        f"largest pair {summary['largest_pair_pixels'] / 1e6:.1f} Mpx. Medians of {summary['rounds']} rounds.",
        "",
        "| what | wall time (s) | reviewer ÷ this |",
        "|---|---:|---:|",
        row("`reviewer analyze` (2 workers)", "reviewer"),
        row("`reviewer analyze` again, unchanged report (cache)", "cached"),
        row("odiff `--aa` + diff image, one process per pair", "odiff"),
        row("pixelmatch (node) + diff image, one process per pair", "pixelmatch"),
        row("Pillow decoding both PNGs of every pair (1 core)", "decode"),
        "",
        "| target | measured | |",
        "|---|---|---|",
        f"| whole report ≤ odiff (aim 0.5) | {summary['ratio_reviewer_to_odiff']:.2f} × odiff | "
        f"{ok(summary['ratio_reviewer_to_odiff'] <= 1.0)} |",
        f"| per pair ≤ 2 × Pillow decoding its PNGs | median {pp['median_ratio']:.2f}, p90 {pp['p90_ratio']:.2f}, "
        f"max {pp['max_ratio']:.2f}; {pp['over_2x']} of {pp['count']} pairs over 2 | {ok(pp['over_2x'] == 0)} |",
        f"| peak memory ≤ 40 B/px of the largest pair ({mem['budget_mb']:.0f} MiB) | "
        f"{mem['peak_rss_mb']:.0f} MiB RSS of the process tree ({mem['bytes_per_pixel_of_largest_pair']:.1f} B/px); "
        f"PSS {mem['peak_pss_mb']:.0f} MiB; sum of each process's own peak {mem['sum_of_process_peaks_mb']:.0f} MiB | "
        f"{ok(mem['peak_rss_mb'] <= mem['budget_mb'])} |",
        f"| both cores used | {summary['cores_used']:.2f} cores busy on average "
        f"(CPU {summary['reviewer_cpu_s']:.1f} s) | {ok(summary['cores_used'] >= 1.5)} |",
        f"| byte-identical pair costs no more than hashing its files | median {same['median_ratio_to_hashing']:.2f}"
        f" × the time to hash both files ({same['count']} pairs; the rest is linking them into the page) | "
        f"{ok(same['median_ratio_to_hashing'] <= 2.0)} |",
        f"| unchanged report re-analysed from the cache | {m['cached']:.2f} s, "
        f"{m['cached'] / m['reviewer'] * 100:.0f}% of a full run | {ok(m['cached'] < 0.25 * m['reviewer'])} |",
        "",
        "Per pair, by kind of pair (reviewer's time for the pair ÷ Pillow decoding its two PNGs):",
        "",
        "| pairs | n | median | max | over 2 |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, v in pp["by_kind"].items():
        lines.append(f"| {kind} | {v['pairs']} | {v['median']:.2f} | {v['max']:.2f} | {v['over_2x']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="reviewer vs odiff vs pixelmatch vs Pillow decode")
    ap.add_argument("--report", type=Path, default=DEFAULT_REPORT, help="a backstop_data folder")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--skip", default="", help="comma-separated: pixelmatch,odiff,decode")
    ap.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = ap.parse_args(argv)
    if args.report == DEFAULT_REPORT and not (DEFAULT_REPORT / "html_report" / "config.js").is_file():
        sys.path.insert(0, str(HERE))
        import make_report

        make_report.make(DEFAULT_REPORT.parent)
    if not ODIFF.is_file() or not (HERE / "node_modules" / "pixelmatch").is_dir():
        print("run `npm install` in benchmarks/ first (odiff-bin, pixelmatch)", file=sys.stderr)
        return 2
    pairs = report_pairs(args.report)
    skip = set(filter(None, args.skip.split(",")))
    info = machine()
    print(f"{len(pairs)} pairs, largest {max(p.pixels for p in pairs) / 1e6:.1f} Mpx; "
          f"{info['cpu']}, {info['cores']} cores")
    work = Path(tempfile.mkdtemp(prefix="reviewer-bench-"))
    rounds: list[dict[str, Any]] = []
    steps = ["reviewer", "odiff", "pixelmatch", "decode"]
    try:
        for k in range(args.rounds):
            out = work / f"round{k}"
            r: dict[str, Any] = {}
            order = steps[k % len(steps):] + steps[: k % len(steps)]
            for step in order:
                if step == "reviewer":
                    r["reviewer"] = run_reviewer(args.report, out)
                    r["reviewer"]["seconds"] = {p["file"]: p["seconds"] for p in
                                                json.loads((out / "review.json").read_text())["pairs"]}
                    r["cached"] = run_reviewer(args.report, out)
                elif step == "odiff":
                    r["odiff"] = {"wall": float("nan")} if "odiff" in skip else run_odiff(pairs)
                elif step == "pixelmatch":
                    r["pixelmatch"] = {"wall": float("nan")} if "pixelmatch" in skip else run_pixelmatch(pairs)
                else:
                    r["decode"] = run_decode(pairs)
            r["hash"] = hash_seconds(pairs)
            rounds.append(r)
            print(f"round {k + 1}: " + ", ".join(f"{s} {r[s]['wall']:.2f}s" for s in
                                                 ("reviewer", "cached", "odiff", "pixelmatch", "decode"))
                  + f"; reviewer peak RSS {r['reviewer']['peak_rss_mb']:.0f} MiB", flush=True)
        summary = summarise(pairs, rounds, args.report, work / f"round{args.rounds - 1}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"machine": info, "summary": summary, "rounds": rounds,
              "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "latest.json").write_text(json.dumps(result, indent=2, default=str))
    text = markdown(summary, info)
    print()
    print(text)
    if summary["verdicts_disagreeing_with_generator"]:
        print("verdicts that differ from the generator's intent:",
              ", ".join(summary["verdicts_disagreeing_with_generator"]))
    print("worst per-pair ratios:", ", ".join(f"{n} {r:.2f}" for r, n in summary["per_pair"]["worst"]))
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
