"""The HTML report in a real headless browser (Debian's chromium): it loads offline, without
errors, and its first screen shows the metrics table."""

import shutil
import subprocess

import numpy as np
import pytest

from qkit.report.build import build_report


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("no headless browser: install Debian's chromium (apt-get install -y chromium)")


def headless(*args, tmp_path) -> subprocess.CompletedProcess:
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_report_renders_in_headless_chromium(run_copy, tmp_path):
    from PIL import Image

    url = build_report(run_copy).resolve().as_uri()
    dom = headless("--dump-dom", url, tmp_path=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert '<table id="metrics">' in dom.stdout and "95% CI" in dom.stdout
    assert not any(s in dom.stderr for s in ("Uncaught", "Failed to load resource", "ERR_")), dom.stderr[-2000:]
    shot = tmp_path / "report.png"
    out = headless("--window-size=1280,1400", f"--screenshot={shot}", url, tmp_path=tmp_path)
    assert out.returncode == 0 and shot.is_file(), out.stderr[-2000:]
    with Image.open(shot) as img:
        pixels = np.asarray(img.convert("L"), dtype=float)
    assert pixels.shape == (1400, 1280) and pixels.std() > 10  # not blank
    # the metrics table's grid lines and text: dark pixels in the upper part of the first screen
    assert (pixels[200:900] < 128).mean() > 0.005
