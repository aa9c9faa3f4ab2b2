#!/usr/bin/env python3
"""Screenshots in headless Chromium: the README as rendered Markdown and the built docs site's pages.

    python ci/screenshots.py SITE_DIR OUT_DIR   (SITE_DIR: what `ci/tox -e docs` built, .tox/docs/tmp/site)

Writes OUT_DIR/readme.png, home.png, api.png (the API reference: optcompat, AdamW), upgrading.png and
migration.png.  Serves SITE_DIR on 127.0.0.1 (a free port), with README.md rendered beside it by
Python-Markdown (the docs env has it: `.tox/docs/bin/python ci/screenshots.py ...`), runs
/usr/bin/chromium --headless --screenshot for each page, and stops the server on every exit path.
The site needs nothing from the network (KaTeX is vendored in docs/), so what the PNGs show is
what a reader sees.  Needs Chromium (Debian: apt-get install chromium).
"""
import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# name: (path under the server, window height): tall enough to show what the page is for
PAGES = {"readme.png": ("readme/README.html", 2600), "home.png": ("index.html", 2200),
         "api.png": ("api/", 2400), "upgrading.png": ("upgrading/", 1600),
         "migration.png": ("migration/", 1400)}
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=5000"]
README_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>README.md</title><style>
body {font: 16px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328;
      max-width: 980px; margin: 0 auto; padding: 32px 45px; border: 1px solid #d0d7de;}
h1, h2 {border-bottom: 1px solid #d8dee4; padding-bottom: .3em;} code {background: #eff1f3;
padding: .2em .4em; border-radius: 6px; font-size: 85%%;} pre {background: #f6f8fa; padding: 16px;
border-radius: 6px; overflow: auto;} pre code {background: none; padding: 0;}
table {border-collapse: collapse;} th, td {border: 1px solid #d0d7de; padding: 6px 13px;}
tr:nth-child(2n) {background: #f6f8fa;} a {color: #0969da; text-decoration: none;}
</style></head><body>%s</body></html>"""


def render_readme(folder):
    """README.md as HTML (tables, fenced code), as the repository's page shows it."""
    import markdown

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        body = markdown.markdown(f.read(), extensions=["tables", "fenced_code"])
    os.makedirs(os.path.join(folder, "readme"), exist_ok=True)
    with open(os.path.join(folder, "readme", "README.html"), "w", encoding="utf-8") as f:
        f.write(README_PAGE % body)


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main(site, out):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("screenshots: no chromium on PATH (Debian: apt-get install chromium)")
    os.makedirs(out, exist_ok=True)
    served = tempfile.mkdtemp(prefix="optcompat-site-")
    shutil.rmtree(served)
    shutil.copytree(site, served)
    render_readme(served)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=served))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for name, (page, height) in PAGES.items():
            profile = tempfile.mkdtemp(prefix="optcompat-chromium-")
            try:
                target = os.path.join(os.path.abspath(out), name)
                url = "http://127.0.0.1:%d/%s" % (server.server_address[1], page)
                subprocess.run([chromium] + FLAGS + ["--window-size=1280,%d" % height, "--user-data-dir=" + profile,
                                                     "--screenshot=" + target, url],
                               check=True, timeout=120, capture_output=True)
                print("screenshots: %s -> %s (%d bytes)" % (url, target, os.path.getsize(target)))
            finally:
                shutil.rmtree(profile, ignore_errors=True)
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(served, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
