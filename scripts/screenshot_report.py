"""Render an HTML report (gridrl report) to a PNG with headless chromium, to check by eye how it
looks: `python scripts/screenshot_report.py report.html --out report.png`."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    """The first chromium-like browser on PATH, or None."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def screenshot(
    html: Path, png: Path, width: int = 1400, height: int = 5000, timeout: float = 120
) -> Path:
    """Render `html` in a `width` x `height` window and save the view as `png`."""
    browser = find_browser()
    if browser is None:
        raise RuntimeError(f"no browser found: install chromium (one of {', '.join(BROWSERS)})")
    if not html.is_file():
        raise FileNotFoundError(f"{html}: no such file")
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:  # a fresh profile: no state from other runs
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",  # runs as root in containers, where the sandbox is unavailable
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={png.resolve()}",
                html.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
    if not png.is_file():
        raise RuntimeError(f"{browser} wrote no screenshot to {png}")
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the report to render")
    parser.add_argument("--out", type=Path, help="PNG to write (default: the report's name .png)")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=5000)
    args = parser.parse_args(argv)
    try:
        png = screenshot(
            args.html, args.out or args.html.with_suffix(".png"), args.width, args.height
        )
    except (RuntimeError, FileNotFoundError, subprocess.SubprocessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
