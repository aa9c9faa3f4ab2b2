"""Regenerate the generated sections of README.md and the docs site's pages from the code and tox.ini.

    python ci/docs.py          rewrite docs/*.md and write the stubs (ci/stubs.py)
    python ci/docs.py --check  exit 1 if a page is stale (tests/test_docs.py runs this)

Sections sit between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->`` in the pages
that show them.  The API reference reads the stubs (``optcompat/*.pyi``: its reader is static,
and AdamW, SGDW and the schedules are made per family at run time), which are build output,
written by :mod:`stubs` (ci/stubs.py) from the declarations.

Both also check README.md's links (``readme_links``): README is the package index's page too,
where a relative link leads nowhere, so every link is absolute, and each one to the docs site
(setup.cfg's ``Documentation`` URL, mkdocs.yml's ``site_url``) or to the repository
(``Source``) names a page / file that exists here, its anchor a heading of that page; and
CHANGELOG.md's form (``changelog``): Keep a Changelog's, ``## [Unreleased]`` first, then each
release ``## [X.Y.Z] - YYYY-MM-DD``, newest first, the newest one ``optcompat/_version.py``'s,
each of Added / Changed / ... at most once per section, a link for every section at the bottom.
"""
import configparser
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import stubs  # noqa: E402  (ci/stubs.py, beside this file)
from optcompat import _conventions  # noqa: E402
from optcompat import _detect  # noqa: E402

DECAY = {"lr": "`lr_t*wd*x`", "one": "`wd*x` (not scaled by lr)",
         "schedule": "`eta_t*wd*x`, `eta_t = lr_t/lr_0`"}
EPS = {"outside": "`lr_t*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)`",
       "inside": "`lr_t/(1-b1^t) * m/(sqrt(v)/sqrt(1-b2^t)+eps)`"}
MOMENTUM = {"keras": "`u=mu*u-lr_t*g; x+=u` (nesterov: `x+=mu*u-lr_t*g`)",
            "torch": "`b=mu*b+g` (`b=g` at step 1); `x-=lr_t*b` (nesterov: `x-=lr_t*(g+mu*b)`)"}
FORM = {"subtract": "`x - x*d`", "scale": "`x*(1-d)`", "combined": "`x + (step - x*d)`"}


def conventions():
    rows = ["| convention | reproduces | decay of the pre-step weight x | Adam step | SGD momentum "
            "| decay rounded as |",
            "|---|---|---|---|---|---|"]
    for c in _conventions.CONVENTIONS.values():
        name = "`%s`%s" % (c.name, " (default)" if c.name == _conventions.DEFAULT else "")
        rows.append("| %s | %s | %s | %s | %s | %s |" % (name, c.peer, DECAY[c.decay], EPS[c.epsilon],
                                                         MOMENTUM[c.momentum], FORM[c.decay_form]))
    return "\n".join(rows)


def tox_envs():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(os.path.join(ROOT, "tox.ini"))
    # the CI subset: the `ci` label (env_list is the whole matrix)
    line = [ln for ln in cfg["tox"]["labels"].splitlines() if ln.strip().startswith("ci")][0]
    envs = [e.strip() for e in re.split(r"[,\s]+", line.split("=", 1)[1]) if e.strip()]
    return envs


def declared(env, name):
    """The value tox.ini's ``set_env`` gives ``name`` in ``env`` (by factor; the last matching
    line wins), or None: the env declarations (OPTCOMPAT_ENV_*) are facts of tox.ini."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(os.path.join(ROOT, "tox.ini"))
    factors = set(env.split("-"))
    value = None
    for line in cfg["testenv"]["set_env"].splitlines():
        cond, _, setting = line.strip().rpartition(": ") if ": " in line else ("", "", line.strip())
        key, _, val = setting.partition("=")
        if key.strip() != name:
            continue
        # "a,b": any of the alternatives; "a-b": all of the factors; "!a": not the factor
        if not cond or any(all((f[1:] not in factors) if f.startswith("!") else (f in factors)
                                for f in alt.strip().split("-")) for alt in cond.split(",")):
            value = val.strip()
    return value


def families_in(env):
    """The families an env tests: its declaration in tox.ini (OPTCOMPAT_ENV_FAMILIES)."""
    return [f for f in (declared(env, "OPTCOMPAT_ENV_FAMILIES") or "").split(",") if f]


def support():
    envs = tox_envs()
    rows = ["| family | host optimizer base | releases | adapter | tox envs (CI) |", "|---|---|---|---|---|"]
    bases = {
        "keras3": "`keras.optimizers.Optimizer`",
        "keras2": "`tf.keras.optimizers.experimental.Optimizer` (2.9-2.10), `tf.keras.optimizers.Optimizer` "
                  "(2.11-2.15), `tf_keras.optimizers.Optimizer`",
        "legacy": "`tf.keras.optimizers.Optimizer` (1.15-2.10), `tf.keras.optimizers.legacy.Optimizer` "
                  "(2.11-2.15), `tf_keras.optimizers.legacy.Optimizer`",
    }
    for fam in _detect.FAMILIES:
        ships = _detect.adapter_available(fam)
        mine = [e for e in envs if fam in families_in(e)]
        rows.append("| `%s` | %s | %s | %s | %s |" % (
            fam, bases[fam], _detect.RELEASES[fam],
            "`optcompat.%s`" % fam if ships else "not yet (planned)",
            ", ".join("`%s`" % e for e in mine) or "-"))
    return "\n".join(rows)


def deviations():
    """Known host deviations and save-format limitations: tests/deviations.py's one list."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import deviations as dev

    return "\n".join(dev.rows())


def _migrations():
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import migrations

    return migrations


SECTIONS = {"conventions": conventions, "support": support, "deviations": deviations,
            "migration-choices": lambda: _migrations().choices(),
            "migration-keras": lambda: _migrations().table("keras"),
            "migration-torch": lambda: _migrations().table("torch"),
            "migration-optax": lambda: _migrations().table("optax"),
            "migration-tfa-imports": lambda: _migrations().one_line("tfa"),
            "migration-keras-adamw-imports": lambda: _migrations().one_line("keras-adamw")}
README_SECTIONS = ()  # README.md is the short front page: its tables live in docs/


def render(text, every=True, made=None):
    made = {} if made is None else made
    for name, fn in SECTIONS.items():
        pat = re.compile(r"(<!-- generated:%s -->\n)(?:.*?\n)?(<!-- /generated:%s -->)" % (name, name), re.S)
        if not pat.search(text):
            if every and name in README_SECTIONS:
                raise SystemExit("README.md lacks the generated:%s markers" % name)
            continue
        if name not in made:
            made[name] = fn()
        text = pat.sub(lambda m: m.group(1) + made[name] + "\n" + m.group(2), text)
    return text


def project_urls():
    """setup.cfg's project_urls: {label: url}."""
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    lines = cfg.get("metadata", "project_urls").strip().splitlines()
    return dict((k.strip(), v.strip()) for k, v in (line.split("=", 1) for line in lines))


def _slug(heading):
    """The anchor mkdocs (Python-Markdown's toc) gives a heading."""
    text = re.sub(r"[`*]", "", heading).strip().lower()
    return re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", text))


def readme_links():
    """The problems with README.md's links (see the module's docstring): a list of strings."""
    urls = project_urls()
    docs, repo = urls["Documentation"], urls["Source"].rstrip("/") + "/blob/main/"
    with open(os.path.join(ROOT, "mkdocs.yml"), encoding="utf-8") as f:
        site = re.search(r"^site_url: *(\S+)", f.read(), re.M)
    problems = [] if site and site.group(1) == docs else ["mkdocs.yml's site_url is not %s" % docs]
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = re.sub(r"```.*?```", "", f.read(), flags=re.S)
    for url in re.findall(r"\]\(([^)\s]+)\)", text):
        target, _, anchor = url.partition("#")
        if not re.match(r"https?://", url):
            problems.append("relative link %s" % url)
            continue
        if target.startswith(docs):
            rel = target[len(docs):].strip("/")
            path = os.path.join(ROOT, "docs", rel + ".md") if rel else os.path.join(ROOT, "docs", "index.md")
            if not os.path.exists(path):
                path = os.path.join(ROOT, "docs", rel, "index.md")
        elif target.startswith(repo):
            path = os.path.join(ROOT, target[len(repo):])
        else:
            continue  # another site: the docs build's link check does not reach it either
        if not os.path.exists(path):
            problems.append("%s: no %s here" % (url, os.path.relpath(path, ROOT)))
        elif anchor:
            with open(path, encoding="utf-8") as f:
                slugs = {_slug(h) for h in re.findall(r"^#+ +(.+)$", f.read(), re.M)}
            if anchor not in slugs:
                problems.append("%s: no heading #%s in %s" % (url, anchor, os.path.relpath(path, ROOT)))
    return problems


KINDS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")


def changelog():
    """The problems with CHANGELOG.md's form (see the module's docstring): a list of strings."""
    with open(os.path.join(ROOT, "CHANGELOG.md"), encoding="utf-8") as f:
        text = f.read()
    with open(os.path.join(ROOT, "optcompat", "_version.py"), encoding="utf-8") as f:
        version = re.search(r"__version__ = \"([^\"]+)\"", f.read()).group(1)
    heads = re.findall(r"^## \[([^\]]+)\](.*)$", text, re.M)
    problems = []
    if not heads or heads[0] != ("Unreleased", ""):
        problems.append("the first section is not ## [Unreleased]")
    releases = [(name, rest) for name, rest in heads if name != "Unreleased"]
    for name, rest in releases:
        if not re.match(r"\d+\.\d+\.\d+$", name) or not re.match(r" - \d{4}-\d{2}-\d{2}$", rest):
            problems.append("## [%s]%s is not ## [X.Y.Z] - YYYY-MM-DD" % (name, rest))
    numbers = [tuple(int(p) for p in n.split(".")) for n, _ in releases if re.match(r"\d+\.\d+\.\d+$", n)]
    if numbers != sorted(numbers, reverse=True):
        problems.append("the releases are not newest first")
    if releases and releases[0][0] != version:
        problems.append("the newest release is %s, optcompat/_version.py says %s" % (releases[0][0], version))
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        kinds = re.findall(r"^### (.+)$", section, re.M)
        name = section.split("\n", 1)[0]
        problems += ["## %s: ### %s is not one of Keep a Changelog's" % (name, k) for k in kinds if k not in KINDS]
        problems += ["## %s: ### %s twice" % (name, k) for k in set(kinds) if kinds.count(k) > 1]
    links = dict(re.findall(r"^\[([^\]]+)\]: (https://\S+)$", text, re.M))
    problems += ["no link for ## [%s]" % name for name, _ in heads if name not in links]
    return problems


def main():
    made, stale = {}, []
    pages = [os.path.join(ROOT, "README.md")] + sorted(
        os.path.join(folder, p) for folder, _, files in os.walk(os.path.join(ROOT, "docs"))
        for p in files if p.endswith(".md"))
    for path in pages:
        with open(path, encoding="utf-8") as f:
            old = f.read()
        new = render(old, every=path.endswith("README.md"), made=made)
        if new == old:
            continue
        if "--check" in sys.argv:
            stale.append(os.path.relpath(path, ROOT))
            continue
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
    if "--check" not in sys.argv:
        stubs.write()  # build output (not tracked), for mkdocs to read
    links = ["README.md: %s" % p for p in readme_links()] + ["CHANGELOG.md: %s" % p for p in changelog()]
    for problem in links:
        print(problem)
    if stale:
        print("%s stale: run `python ci/docs.py`" % ", ".join(stale))
    return 1 if stale or links else 0


if __name__ == "__main__":
    sys.exit(main())
