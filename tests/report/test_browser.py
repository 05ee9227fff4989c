"""index.html in a real browser: Debian's headless Chromium renders it, and every image decodes."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from report_records import ALL_RECORDS, plan_for, write_all

from study.report import build_report

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=10000"]


def _chromium(profile, *args):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/system_test_deps.sh installs Debian's 'chromium' as root)")
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _body_data(dom: str) -> dict:
    body = re.search(r"<body([^>]*)>", dom).group(1)
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body))


def test_index_renders_and_every_image_loads(tmp_path):
    plan = plan_for(ALL_RECORDS)
    write_all(tmp_path / "w", ALL_RECORDS, with_pretrain_for=plan)
    out = tmp_path / "report"
    s = build_report(tmp_path / "w", out, plan=plan)
    url = (out / "index.html").resolve().as_uri()
    shot = tmp_path / "screenshot.png"
    _chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,4000", url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    data = _body_data(_chromium(tmp_path / "profile", "--dump-dom", url))
    assert data["images-total"] == str(len(s.drawn)) == "6"
    assert data["images-loaded"] == "true", data.get("images-broken")

    # the check can fail: a figure that is not there is reported broken
    (out / "quality.png").unlink()
    data = _body_data(_chromium(tmp_path / "profile", "--dump-dom", url))
    assert data["images-loaded"] == "false" and data["images-broken"] == "quality.png"
