"""Run the real BackstopJS 6.3.25 (fixtures/tools, installed by scripts/setup.sh) against the
re-capture test pages in fixtures/recapture, served live on 127.0.0.1.

BackstopJS reads its config and writes backstop_data/ relative to the folder it runs in, so
each run gets a work folder of its own with the config, its cookie file and BackstopJS's
default engine scripts (what `backstop init` would copy). Each run gets a TMPDIR of its own,
removed afterwards: BackstopJS leaves a compare config and a capture/ folder there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "fixtures" / "tools"
BACKSTOP = TOOLS / "node_modules" / ".bin" / "backstop"
ENGINE_SCRIPTS = TOOLS / "node_modules" / "backstopjs" / "capture" / "engine_scripts" / "puppet"
RECAPTURE = ROOT / "fixtures" / "recapture"
VERSION = "6.3.25"


def _load_site_server() -> Any:
    """fixtures/recapture/serve.py, under a name of its own (not a bare `serve` on sys.path)."""
    spec = importlib.util.spec_from_file_location("recapture_site_server", RECAPTURE / "serve.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_server = _load_site_server()
Site, make_server = _server.Site, _server.make_server


def require_backstop() -> None:
    """These tests run the real BackstopJS: its absence is a broken setup, not a reason to skip."""
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("/usr/bin/chromium is not installed")
    if not BACKSTOP.exists():
        pytest.fail(f"BackstopJS is not installed in {TOOLS}: run `bash scripts/setup.sh` (npm ci there, without "
                    "a browser download)")


@contextmanager
def serving(ports: range, release: str = "v1") -> Iterator[tuple[Any, int]]:
    """fixtures/recapture on the first free port of `ports` on 127.0.0.1 (tests running side by
    side take different ones); yields the Site, whose release may be switched, and the port."""
    site = Site(release)
    for port in ports:
        try:
            httpd = make_server(port, site)
            break
        except OSError:
            continue
    else:
        pytest.fail(f"no free port in 127.0.0.1:{ports.start}-{ports.stop - 1} for the re-capture test pages: "
                    "stop what listens there")
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield site, port
    finally:
        httpd.shutdown()
        httpd.server_close()


def workdir(dest: Path, config: str, port: int, edit: dict[str, Any] | None = None,
            labels: tuple[str, ...] | None = None) -> Path:
    """A BackstopJS project folder: backstop.json (from fixtures/recapture/CONFIG, its URLs on
    `port`, with `edit` applied at the top level, only the scenarios named in `labels` if given),
    cookies.json and the default engine scripts."""
    dest.mkdir(parents=True, exist_ok=True)
    text = re.sub(r"http://127\.0\.0\.1:\d+/", f"http://127.0.0.1:{port}/", (RECAPTURE / config).read_text())
    data = json.loads(text)
    data.update(edit or {})
    if labels is not None:
        data["scenarios"] = [s for s in data["scenarios"] if s["label"] in labels]
    (dest / "backstop.json").write_text(json.dumps(data, indent=2))
    shutil.copy(RECAPTURE / "cookies.json", dest / "cookies.json")
    shutil.copytree(ENGINE_SCRIPTS, dest / "backstop_data" / "engine_scripts" / "puppet", dirs_exist_ok=True)
    return dest


_TMP: dict[int, str] = {}


def start(folder: Path, command: str) -> subprocess.Popen[str]:
    # A short TMPDIR of its own: Chromium's profile socket path must stay under 108 bytes.
    tmp = tempfile.mkdtemp(prefix="bjs-")
    env = {**os.environ, "TMPDIR": tmp, "PUPPETEER_SKIP_DOWNLOAD": "1"}
    proc = subprocess.Popen([str(BACKSTOP), command, "--config=backstop.json"], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _TMP[proc.pid] = tmp
    return proc


def finish(proc: subprocess.Popen[str], expected: tuple[int, ...], what: str) -> str:
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        shutil.rmtree(_TMP.pop(proc.pid, ""), ignore_errors=True)
    if proc.returncode not in expected:
        pytest.fail(f"backstop {what} exited {proc.returncode} (expected {expected}):\n{out[-4000:]}")
    return out


def run(folder: Path, command: str, expected: tuple[int, ...] = (0,)) -> str:
    return finish(start(folder, command), expected, command)
