"""Render a bayes_scaling HTML report in headless Chromium and check the screenshot shows it.

Usage: python benchmarks/screenshot_report.py [REPORT.html] [--png OUT.png]
                                              [--width 1400] [--height 4000]

Chromium comes from Debian's packages (`apt-get install -y chromium`). The browser runs
with a fresh profile, no GPU, no sandbox (root in a container) and no background network.
The check: the PNG is not blank (enough non-white pixels, enough variation) and shows
figures (enough strongly coloured pixels: text and tables are grey). Prints one JSON line
of pixel statistics; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from matplotlib import image

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def find_chromium() -> str | None:
    """Path of Debian's chromium (or another chromium/chrome on PATH)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(report: Path, png: Path, width: int = 1400, height: int = 4000,
               chromium: str | None = None, timeout: float = 120.0) -> Path:
    """Render ``report`` (a local HTML file) to ``png`` in headless Chromium."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium not found: apt-get install -y chromium")
    png = png.resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
               f"--screenshot={png}", f"--window-size={width},{height}",
               report.resolve().as_uri()]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot (exit {result.returncode}):\n"
                           f"{result.stderr[-2000:]}")
    return png


def pixel_stats(png: Path) -> dict[str, float]:
    """Fractions of non-white and of strongly coloured pixels, and the grey-level spread."""
    rgb = image.imread(png)[..., :3].astype(float)
    if rgb.max() > 1.0:
        rgb /= 255.0
    grey = rgb.mean(axis=-1)
    saturation = rgb.max(axis=-1) - rgb.min(axis=-1)
    return {"height": int(rgb.shape[0]), "width": int(rgb.shape[1]),
            "non_white": float((grey < 0.95).mean()), "coloured": float((saturation > 0.25).mean()),
            "grey_std": float(grey.std())}


def check(stats: dict[str, float], min_non_white: float = 0.05, min_coloured: float = 0.01,
          min_std: float = 0.05) -> list[str]:
    """Problems with a screenshot (empty list: it shows a page with figures)."""
    problems = []
    if stats["non_white"] < min_non_white:
        problems.append(f"only {stats['non_white']:.1%} non-white pixels: blank page?")
    if stats["grey_std"] < min_std:
        problems.append(f"grey-level spread {stats['grey_std']:.3f}: a flat image")
    if stats["coloured"] < min_coloured:
        problems.append(f"only {stats['coloured']:.1%} coloured pixels: no figures shown?")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, nargs="?", default=Path("demo_out/report.html"))
    parser.add_argument("--png", type=Path, default=None,
                        help="screenshot path (default: <report>.png next to the report)")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=4000)
    args = parser.parse_args(argv)
    if not args.report.is_file():
        print(f"error: {args.report}: no such report (run `bayes-scaling demo` first)",
              file=sys.stderr)
        return 2
    png = screenshot(args.report, args.png or args.report.with_suffix(".png"), args.width,
                     args.height)
    stats = pixel_stats(png)
    problems = check(stats)
    print(json.dumps({"png": str(png), **stats, "problems": problems}))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
