#!/usr/bin/env python3
"""Check the built docs site for what should never reach a reader: reST roles and private names.

    python ci/check_site.py SITE_DIR     (SITE_DIR: what `mkdocs build` wrote, .tox/docs/tmp/site)

The docstrings are Google style in Markdown (mkdocs.yml: mkdocstrings), so a reST role
(:func:`x`, :class:, :mod:, :meth:, :data:, :attr:) or a reST literal (``x``) in a page's text
is a docstring not converted, shown raw.  The API reference must name public things only: a
private module (optcompat._common, ._detect, ...) or a private name (_Optimizer) in it means a
private alias leaked into the rendered signatures, bases or headings.  Exit status 1 with each
finding (page, what, the text around it); standard library only.
"""
import html
import os
import re
import sys

ROLES = re.compile(r":(?:func|class|mod|meth|data|attr|obj|exc|ref|math):|``")
PRIVATE = re.compile(r"\boptcompat(?:\.\w+)*\._\w+|(?<![\w.])_(?!_)[A-Za-z]\w*(?=[\s(.,:\[\]']|$)")
# public although they start with "_": keras-adamw's own parameter name, kept so that its
# callers' keywords work (optcompat.keras_adamw.fill_dict_in_order(_dict=...))
ALLOWED = {"_dict"}
MATH = re.compile(r"\\\(.*?\\\)|\\\[.*?\\\]", re.S)  # arithmatex's \( \) and \[ \]: subscripts


def text_of(page):
    """The page's visible text: no scripts, styles, search index or tags; entities decoded."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    page = re.sub(r"<[^>]+>", " ", page)
    return MATH.sub(" ", html.unescape(page))


def around(text, match):
    return text[max(0, match.start() - 40):match.end() + 40].replace("\n", " ")


def findings(site):
    out = []
    for folder, _, files in os.walk(site):
        for name in sorted(files):
            if not name.endswith(".html"):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, site)
            with open(path, encoding="utf-8") as f:
                text = text_of(f.read())
            for m in ROLES.finditer(text):
                out.append("%s: reST markup %r in ...%s..." % (rel, m.group(0), around(text, m)))
            if rel.replace(os.sep, "/").startswith("api/"):
                for m in (m for m in PRIVATE.finditer(text) if m.group(0) not in ALLOWED):
                    out.append("%s: private name %r in ...%s..." % (rel, m.group(0), around(text, m)))
    return out


def main(argv):
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        raise SystemExit("usage: python ci/check_site.py SITE_DIR")
    found = findings(argv[0])
    for line in found:
        print("check_site: " + line)
    pages = sum(1 for _, _, files in os.walk(argv[0]) for f in files if f.endswith(".html"))
    print("check_site: %d pages, %d findings" % (pages, len(found)))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
