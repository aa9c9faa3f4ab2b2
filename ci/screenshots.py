#!/usr/bin/env python3
"""Screenshots of the built docs site in headless Chromium: the home page and the AdamW API entry.

    python ci/screenshots.py SITE_DIR OUT_DIR   (SITE_DIR: what `ci/tox -e docs` built, .tox/docs/tmp/site)

Serves SITE_DIR on 127.0.0.1 (a free port), runs /usr/bin/chromium --headless --screenshot for
each page, and stops the server on every exit path.  Standard library only; needs Chromium
(Debian: apt-get install chromium)."""
import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading

PAGES = {"home.png": "index.html", "api-adamw.png": "api/"}
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1280,1000"]


def main(site, out):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("screenshots: no chromium on PATH (Debian: apt-get install chromium)")
    os.makedirs(out, exist_ok=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=site)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for name, page in PAGES.items():
            profile = tempfile.mkdtemp(prefix="optcompat-chromium-")
            try:
                target = os.path.join(os.path.abspath(out), name)
                url = "http://127.0.0.1:%d/%s" % (server.server_address[1], page)
                subprocess.run([chromium] + FLAGS + ["--user-data-dir=" + profile, "--screenshot=" + target, url],
                               check=True, timeout=120, capture_output=True)
                print("screenshots: %s -> %s (%d bytes)" % (url, target, os.path.getsize(target)))
            finally:
                shutil.rmtree(profile, ignore_errors=True)
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
