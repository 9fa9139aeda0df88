"""`bayes-scaling demo` and `bayes-scaling report` by subprocess, as a newcomer runs them (tiny
sampler settings), and the report rendered in headless Chromium when it is installed."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ("landscapes_dense_code", "landscapes_dense_web", "landscapes_moe_code",
           "landscapes_moe_web", "laws", "predictive", "regret", "proposals")
SECTIONS = ("data", "diagnostics", "laws", "targets", "proposals", "cells")


@pytest.fixture(scope="module")
def demo(demo_run) -> tuple[Path, subprocess.CompletedProcess]:
    """`bayes-scaling demo` with tiny sampler settings (conftest's background run)."""
    out, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_demo_shows_progress_and_tables(demo):
    _, result = demo
    out = result.stdout
    for i in range(1, 8):
        assert f"[{i}/7]" in out
    for text in ("896 runs in 32 cells", "law parameters", "diagnostics", "lr_opt",
                 "batch_tokens_opt", "weight_decay_opt", "eig_nats", "report ->"):
        assert text in out, text


def test_demo_writes_every_file(demo):
    out, _ = demo
    for name in ("sweep.csv", "truth.nc", "posterior.nc", "report.html"):
        assert (out / name).stat().st_size > 10_000, name
    for stem in FIGURES:
        png, svg = out / "figures" / f"{stem}.png", out / "figures" / f"{stem}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
        assert "<svg" in svg.read_text() and svg.stat().st_size > 20_000
    assert sorted(p.stem for p in (out / "figures").glob("*.png")) == sorted(FIGURES)


def test_demo_report_is_self_contained(demo):
    page = (demo[0] / "report.html").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == len(FIGURES)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"https?://", page)
    assert "<script" not in page


def test_report_command_on_the_demo_posterior(run_cli, demo, tmp_path):
    posterior = demo[0] / "posterior.nc"
    out = tmp_path / "r.html"
    result = run_cli("report", posterior, "--out", out, "--params", 3e9, "--tokens", 6e11,
                 "--arch", "moe", "--mix", "code", "--k", 1, "--figures", tmp_path / "figs")
    assert result.returncode == 0, result.stderr[-3000:]
    page = out.read_text(encoding="utf-8")
    assert "moe / code, N=3e9, D=6e11" in page
    assert all(f'<section id="{s}">' in page for s in SECTIONS)
    assert (tmp_path / "figs" / "regret.svg").is_file()
    assert "report ->" in result.stdout


def test_report_command_explains_a_missing_posterior(run_cli, tmp_path):
    result = run_cli("report", tmp_path / "nope.nc", "--out", tmp_path / "r.html", timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and "nope.nc" in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_report_screenshot_shows_the_figures(demo, tmp_path):
    assert shutil.which("chromium"), ("chromium is not installed: `make test` installs it "
                                      "(apt-get install -y chromium)")
    png = tmp_path / "report.png"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "screenshot_report.py"),
                             str(demo[0] / "report.html"), "--png", str(png)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert stats["problems"] == [] and stats["height"] == 4000
    assert stats["coloured"] > 0.01  # the demo report's top 4000 px: 1.9% at 195a72b
