"""Headless Chromium for the browser tests: Debian's package, driven by Playwright for Python."""

from __future__ import annotations

#: As root in a closed network: no sandbox, and none of Chromium's own background connections.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
