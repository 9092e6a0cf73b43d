"""Debian's Chromium as the Web UI tests and `docs/screenshots.py` launch it (Playwright
drives it through `executable_path`; it never downloads a browser)."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and quiet: no sandbox (root in CI), no GPU, and none of Chromium's own calls home
# (without them its outbound connections are refused noisily on a machine without internet).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
