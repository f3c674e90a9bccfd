"""The documentation site: what its pages take from the README and the code arrives whole and right, and the
built site reads well in a browser.

* README sections included by a page (``<!-- readme: TITLE -->``) equal the README's text under that heading,
  found by an independent Markdown parser (markdown-it), and their code blocks are on the built page.
* Config tables leave out the fields an algorithm refuses, and escape what they show.
* The built HTML has no Sphinx role left as text, no literal code fence, no private parameter, and no script
  or stylesheet from another host (the site reads the same offline).
* Every page in headless Chromium (``_browser.py``) at 1280 px and at 390 px: no JavaScript error or failed
  load, the page never scrolls sideways, tables and display math scroll inside their own box (at 1280 px none
  needs to), figures link to their full-size image, API signatures wrap, all math rendered by KaTeX, every
  image loaded. Skipped where Chromium is not installed (``.ci/run`` installs it with apt-get, so CI runs it).

The site is built once per test session (``mkdocs build --strict``), shared by pytest-xdist's workers.
"""

from __future__ import annotations

import fcntl
import html
import html.parser
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from purerl.algorithms import NAMES, OFF_POLICY
from _helpers import docs_hooks

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|data|attr|obj|exc|const):")


def hooks():
    return docs_hooks()


def includes() -> list[tuple[str, str]]:
    """``(page, README section title)`` for every ``<!-- readme: ... -->`` in the docs."""
    out = []
    for page in sorted(DOCS.rglob("*.md")):
        for title in re.findall(r"<!-- readme: (.+?) -->", page.read_text()):
            out.append((str(page.relative_to(DOCS)), title.strip()))
    return out


def markdown_it_section(text: str, title: str) -> str:
    """The README section under ``title``, found with markdown-it's block parser (which knows fenced code)."""
    markdown_it = pytest.importorskip("markdown_it")
    tokens = markdown_it.MarkdownIt("commonmark").parse(text)
    found = [(int(t.tag[1]), t.map[0], tokens[i + 1].content.strip())
             for i, t in enumerate(tokens) if t.type == "heading_open"]
    lines = text.splitlines()
    for n, (level, start, name) in enumerate(found):
        if name == title:
            end = next((s for lv, s, _ in found[n + 1:] if lv <= level), len(lines))
            return "\n".join(lines[start + 1:end])
    raise AssertionError(f"the README has no heading {title!r}")


def fenced_blocks(markdown: str) -> list[str]:
    markdown_it = pytest.importorskip("markdown_it")
    return [t.content for t in markdown_it.MarkdownIt("commonmark").parse(markdown) if t.type == "fence"]


# --- without a build -----------------------------------------------------------------------------------------

def test_headings_inside_fenced_code_are_not_headings():
    text = ("# Top\n\n## A\n\n```python\n# a comment, not a heading\nx = 1\n```\n\nafter the code\n\n"
            "````markdown\n```\n## inside a longer fence\n```\n````\n\n~~~\n# tilde fence\n~~~\n\nend of A\n\n"
            "## B\n\nb\n")
    assert [(level, t) for _, level, t in hooks().headings(text)] == [(1, "Top"), (2, "A"), (2, "B")]
    body = hooks().section(text, "A")
    assert body.strip().startswith("```python") and body.strip().endswith("end of A")
    assert body == markdown_it_section(text, "A")


def test_included_readme_sections_are_whole():
    readme = (ROOT / "README.md").read_text()
    found = includes()
    assert ("getting-started.md", "Python API") in found
    for page, title in found:
        expected = hooks().relink(markdown_it_section(readme, title)).strip() + "\n"
        got = hooks().readme_section(title)
        assert got == expected, f"docs/{page}: README section {title!r} arrives cut or changed"
    # the section that was cut at its first `# comment`: all of it, with its code
    python_api = hooks().readme_section("Python API")
    assert len(python_api.splitlines()) > 100
    assert len(fenced_blocks(python_api)) >= 4


def test_config_tables_leave_out_refused_fields_and_escape_cells():
    import dataclasses

    from purerl.algorithms import module as algo_module

    expected_refused = {"ppo": set(), "a2c": set(), "reinforce": {"recurrent"}, "a3c": {"recurrent"},
                        "trpo": {"recurrent", "shared_network"}, "ddpg": set(), "td3": set(), "sac": set(),
                        "sac_discrete": set(), "dqn": {"actor_lr", "critic_lr"},
                        "pqn": {"recurrent", "shared_network", "state_dependent_std", "action_transform"}}
    assert set(expected_refused) == set(NAMES)
    for algo, refused in expected_refused.items():
        config_cls = algo_module(algo).Config
        table = hooks().config_table(algo)
        shown = re.findall(r"^\| <code>(\w+)</code> \|", html.unescape(table), flags=re.M)
        fields = [f.name for f in dataclasses.fields(config_cls)]
        assert shown == [f for f in fields if f not in refused], algo
        for name in refused:  # left out because the algorithm really refuses it
            default = next(f.default for f in dataclasses.fields(config_cls) if f.name == name)
            with pytest.raises(ValueError, match=f"`{name}`"):
                config_cls(**{name: not default if isinstance(default, bool) else 2 * default}).validate()
    # generated cells are escaped: `brax/<name>` is text, not an HTML tag; `-|A|` does not split a cell
    assert "brax/&#60;name&#62;" in hooks().config_table("ppo")
    sac = hooks().config_table("sac")
    row = next(line for line in sac.splitlines() if line.startswith("| <code>target&#95;entropy</code>"))
    assert row.count("|") == 5 and "-&#124;A&#124;" in row    # four cells


def public_run_modules() -> list[str]:
    import pkgutil

    import purerl.run

    return sorted(f"purerl.run.{m.name}" for m in pkgutil.iter_modules(purerl.run.__path__)
                  if not m.name.startswith("_"))


def test_every_public_module_of_purerl_run_is_in_the_api_reference():
    nav = (ROOT / "mkdocs.yml").read_text()
    documented = {}
    for page in sorted(DOCS.glob("api*.md")):
        assert f": {page.name}" in nav, f"docs/{page.name} is not in mkdocs.yml's nav"
        for name in re.findall(r"^::: (purerl\.run\.\w+)", page.read_text(), flags=re.M):
            documented[name] = page.name
    modules = public_run_modules()
    assert {"purerl.run.export", "purerl.run.render", "purerl.run.loggers", "purerl.run.cluster"} <= set(modules)
    missing = [m for m in modules if m not in documented]
    assert not missing, f"public modules of purerl.run missing from the API reference (docs/api*.md): {missing}"


def test_readme_bibtex_is_generated_from_citation_cff():
    yaml = pytest.importorskip("yaml")
    # the generator, on a file with every field it reads (a hand-written expectation)
    sample = ("title: \"a_b & {c}: x\"\nauthors:\n  - family-names: Doe\n    given-names: Jane\n  - name: Team X\n"
              "version: 1.2\ndate-released: 2025-01-02\ndoi: 10.1/x\nrepository-code: https://example.org/x\n"
              "license: MIT\n")
    assert hooks().bibtex(sample) == (
        "@software{a_bc,\n  title = {{a\\_b \\& \\{c\\}: x}},\n  author = {Doe, Jane and {Team X}},\n"
        "  version = {1.2},\n  year = {2025},\n  doi = {10.1/x},\n  url = {https://example.org/x},\n"
        "  license = {MIT},\n}\n")
    # the README's entry is the one CITATION.cff gives, and holds nothing the file does not
    section = markdown_it_section((ROOT / "README.md").read_text(), "Citing purerl")
    (entry,) = fenced_blocks(section)
    assert entry == hooks().bibtex()
    meta = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert meta["title"] in entry and str(meta["version"]) in entry
    # a repository URL appears (in the entry and as the site's repo_url) only once CITATION.cff holds one
    has_url = bool(meta.get("repository-code") or meta.get("url"))
    assert ("url = {" in entry) == has_url
    assert ("repo_url:" in (ROOT / "mkdocs.yml").read_text()) == has_url
    assert ("Citing purerl", "index.md") in [(t, p) for p, t in includes()]


# --- the built site ------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The site built by ``mkdocs build --strict`` (once for all xdist workers: a lock and a shared folder)."""
    for module in ("mkdocs", "mkdocstrings", "pymdownx"):
        pytest.importorskip(module, reason=f"the docs extra is not installed (no {module}): "
                                           f"pip install -e '.[docs]'")
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out, log = shared / "docs-site", shared / "docs-site.log"
    with open(shared / "docs-site.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not log.exists():
            start = time.perf_counter()
            env = {**os.environ, "JAX_PLATFORMS": "cpu"}
            proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                                  cwd=ROOT, env=env, capture_output=True, text=True)
            log.write_text(f"{proc.returncode}\n{time.perf_counter() - start:.1f}\n{proc.stdout}{proc.stderr}")
        rc, _, output = log.read_text().split("\n", 2)
    if rc != "0":
        pytest.fail(f"mkdocs build --strict failed:\n{output[-6000:]}")
    return out


class _Text(html.parser.HTMLParser):
    """A page's main text, its <pre> blocks' text, and the URLs of its scripts and stylesheets."""

    def __init__(self):
        super().__init__()
        self.text, self.pres, self.assets, self.rows = [], [], [], []
        self._pre, self._skip, self._cell = None, 0, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.assets.append(a["src"])
        if tag == "link" and a.get("rel") == "stylesheet":
            self.assets.append(a.get("href", ""))
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "pre":
            self._pre = []
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        if tag in ("script", "style"):
            self._skip -= 1
        if tag == "pre" and self._pre is not None:
            self.pres.append("".join(self._pre))
            self._pre = None

    def handle_data(self, data):
        if self._skip:
            return
        self.text.append(data)
        if self._pre is not None:
            self._pre.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> _Text:
    p = _Text()
    p.feed(path.read_text())
    return p


def pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("index.html"))


def test_built_pages_have_no_raw_markup_and_no_remote_assets(site):
    problems = []
    for path in pages(site):
        name = str(path.parent.relative_to(site)) or "home"
        p = parse(path)
        text = "".join(p.text)
        if ROLE.search(text):
            problems.append(f"{name}: a Sphinx role left as text: {ROLE.search(text).group(0)}")
        if "```" in text:
            problems.append(f"{name}: a literal ``` in the text")
        if re.search(r"\b_resume\b", text):
            problems.append(f"{name}: the private parameter _resume is shown")
        for url in p.assets:
            if re.match(r"(https?:)?//", url):
                problems.append(f"{name}: loads {url} from another host")
    assert not problems, "\n".join(problems)


def test_figures_are_links_to_their_full_size_image(site):
    assert hooks().link_figures('<p><img alt="a" src="f.png" /></p>') == \
        '<p><a class="figure-link" href="f.png"><img alt="a" src="f.png" /></a></p>'
    linked = '<a href="x.html">see <img src="badge.svg"></a>'
    assert hooks().link_figures(linked) == linked                      # already a link: left alone
    figures = 0
    for path in pages(site):
        page = path.read_text()
        for m in re.finditer(r"<img\b[^>]*\ssrc=\"([^\"]+)\"[^>]*>", page):
            before = page[:m.start()]
            assert re.search(r'<a class="figure-link" href="' + re.escape(m.group(1)) + r'">$', before), \
                f"{path.relative_to(site)}: {m.group(1)} is not a link to itself"
            figures += 1
    assert figures >= 15   # the algorithm pages' curves, the benchmark figures, the notebooks' plots


def test_readme_code_arrives_on_the_built_pages(site):
    readme = (ROOT / "README.md").read_text()
    for page, title in includes():
        built = site / ("index.html" if page == "index.md" else Path(page).with_suffix("") / "index.html")
        pres = [re.sub(r"\s+", " ", t).strip() for t in parse(built).pres]
        for block in fenced_blocks(markdown_it_section(readme, title)):
            code = re.sub(r"\s+", " ", block).strip()
            assert code in pres, f"docs/{page}: a code block of README section {title!r} is missing:\n{block}"
    text = "".join(parse(site / "getting-started" / "index.html").text)
    assert 'result = purerl.jit(train)(jax.random.key(0))' in text
    # highlighted at build time: Pygments' token classes are in the HTML
    assert '<span class="kn">import</span>' in (site / "getting-started" / "index.html").read_text()


def test_built_home_page_shows_the_bibtex_entry(site):
    home = "\n".join(parse(site / "index.html").pres)
    assert hooks().bibtex().strip() in home


def test_built_notebook_pages_show_their_outputs(site):
    expected = {"quickstart": (5, ["small mode {", "final return per seed:", "ranked by IQM"]),
                "sac_pendulum": (2, ["small mode {", "eval return", "deterministic:"])}
    for name, (images, texts) in expected.items():
        path = site / "notebooks" / name / "index.html"
        page, parsed = path.read_text(), parse(path)
        shown = page.count("<img ")
        assert shown >= images, f"notebooks/{name}: {shown} output images, expected {images} or more"
        assert re.search(r'<img [^>]*src="cell\d+_\d+\.gif"', page), f"notebooks/{name}: the rendered GIF is missing"
        outputs = "\n".join(parsed.pres)
        for text in texts:
            assert text in outputs, f"notebooks/{name}: the output {text!r} is not on the page"
        assert "outputs of an execution in its small mode" in "".join(parsed.text), name


# metrics only one algorithm (or family) logs: each must be on its page's metrics table
OWN_METRICS = {"ppo": ("approx_kl", "clip_frac", "kl_stopped"), "reinforce": ("baseline", "complete_frac"),
               "a2c": ("grad_norm",), "a3c": ("staleness",), "trpo": ("kl", "accepted", "line_search_steps"),
               "ddpg": ("target_q", "eval_return"), "td3": ("target_q", "eval_return"),
               "sac": ("alpha", "alpha_loss", "eval_return"), "sac_discrete": ("alpha", "alpha_loss", "eval_return"),
               "dqn": ("td_loss", "epsilon", "target_q", "eval_return"), "pqn": ("td_loss", "lambda_return", "epsilon")}


def test_built_algorithm_pages(site):
    for algo in NAMES:
        page = (site / "algorithms" / algo / "index.html").read_text()
        parsed = parse(site / "algorithms" / algo / "index.html")
        assert "arxiv.org" in page or "doi.org" in page, f"{algo}: no paper link"
        assert "Differences from the reference implementation" in "".join(parsed.text)
        metrics = {row[0]: row[1] for row in parsed.rows if len(row) == 2}   # the metrics table: name, meaning
        for name in ("episode_return", "env_steps", *OWN_METRICS[algo]):
            assert metrics.get(name), f"{algo}: metric {name} is not listed with its meaning"
        config_rows = [row[0] for row in parsed.rows if len(row) == 4]
        assert "learning_rate" in config_rows or "actor_lr" in config_rows, algo
        assert ("recurrent" in config_rows) == (algo in ("ppo", "a2c")), algo
        assert ("shared_network" in config_rows) == (algo not in ("trpo", "pqn", *OFF_POLICY)), algo
    assert "brax/<name>" in "".join(parse(site / "algorithms" / "ppo" / "index.html").text)
    train = (site / "api" / "index.html").read_text()
    assert "_resume" not in train
    for page, names in {"api-envs": ["purerl.envs.make", "purerl.envs.base.VecEnv"],
                        "api-training": ["purerl.core.loop.Trainer", "purerl.core.onpolicy.policy_gradient_loss",
                                         "purerl.core.offpolicy.critic_loss", "purerl.core.offpolicy.td_target",
                                         "purerl.core.trajectory.q_lambda", "purerl.core.onpolicy.collect_with",
                                         "purerl.core.exploration.epsilon_greedy"],
                        "api-networks": ["purerl.networks.ActorCritic", "purerl.networks.QEnsemble"],
                        "api": ["purerl.sweep.SweepResult", "purerl.run.progressbar.ProgressBar"],
                        "api-tools": ["purerl.run.export.export_policy", "purerl.run.render.render",
                                      "purerl.run.render.note", "purerl.run.loggers.TensorBoardLogger",
                                      "purerl.run.loggers.WandbLogger", "purerl.run.cluster.supervise",
                                      "purerl.run.profiling.phase_profile"],
                        "algorithms/ppo": ["purerl.ppo.loss"], "algorithms/trpo": ["purerl.trpo.surrogate"],
                        "algorithms/pqn": ["purerl.pqn.loss", "purerl.pqn.epsilon"],
                        "algorithms/ddpg": ["purerl.ddpg.actor_loss"],
                        "algorithms/sac": ["purerl.sac.actor_loss", "purerl.sac.temperature_loss"],
                        "algorithms/sac_discrete": ["purerl.sac_discrete.actor_loss",
                                                    "purerl.sac_discrete.soft_value"],
                        "algorithms/dqn": ["purerl.dqn.n_step_return", "purerl.dqn.bootstrap_value",
                                           "purerl.dqn.loss", "purerl.dqn.update_target"]}.items():
        built = (site / page / "index.html").read_text()
        for name in names:
            assert f'id="{name}"' in built, f"{page}: {name} is not documented"
    notebook = (site / "notebooks" / "claims" / "index.html").read_text()
    assert notebook.count("<img ") >= 5 and "nothing is executed" in notebook


# --- in a browser --------------------------------------------------------------------------------------------

# Runs in each page once it has loaded, given the window's width: what a reader would see wrong.
CHECK_PAGE = r"""((wide) => {
  const out = {problems: [], images: [], roles: null, fence: false};
  const say = (msg) => out.problems.push(msg);
  const se = document.scrollingElement;
  if (se.scrollWidth > se.clientWidth + 1) say(`the page scrolls sideways: ${se.scrollWidth} px in a ${se.clientWidth} px window`);
  const column = document.querySelector('.rst-content') || document.body;
  const col = column.getBoundingClientRect();
  const label = (e) => (e.innerText || e.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 60);
  const scroller = (e) => {   // the nearest box around e that scrolls sideways, inside the column
    for (let a = e.parentElement; a && a !== column.parentElement; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX;
      if (o === 'auto' || o === 'scroll') return a;
    }
    return null;
  };
  // A table or display equation: its content fits its own box, and that box sits in a box that scrolls
  // sideways, fits the column and reaches the element's end (at 1280 px: that needs no scrolling).
  const scrolls = (e, what) => {
    if (e.scrollWidth > e.clientWidth + 1) say(`${what}: runs ${e.scrollWidth - e.clientWidth} px over its own box (cut)`);
    const box = scroller(e);
    if (!box) { say(`${what} is not inside a box that scrolls sideways`); return; }
    const b = box.getBoundingClientRect();
    if (b.left < col.left - 1 || b.right > col.right + 1) say(`${what}: its scrolling box (${Math.round(b.width)} px) runs out of the ${Math.round(col.width)} px column`);
    if (box.scrollWidth + 1 < e.getBoundingClientRect().width) say(`${what}: part of it cannot be scrolled to`);
    if (wide && box.scrollWidth > box.clientWidth + 1) say(`${what}: ${box.scrollWidth} px wide in a ${box.clientWidth} px column`);
  };
  document.querySelectorAll('.rst-content table').forEach((t, i) => scrolls(t, `table ${i + 1} (${label(t.querySelector('tr') || t)})`));
  document.querySelectorAll('.arithmatex').forEach((m) => {
    if (!m.querySelector('.katex')) say('math unrendered: ' + m.textContent.slice(0, 60));
  });
  document.querySelectorAll('.rst-content .katex-display').forEach((m) => {
    const tex = m.querySelector('annotation');
    scrolls(m, `display math (${tex ? tex.textContent.trim().slice(0, 50) : label(m)})`);
  });
  document.querySelectorAll('img').forEach((img) => {
    if (!img.complete || img.naturalWidth === 0) out.images.push(img.getAttribute('src'));
  });
  document.querySelectorAll('.rst-content img').forEach((img) => {
    const a = img.closest('a');
    if (!a || a.href !== img.src) say(`figure ${img.getAttribute('src')} is not a link to its full-size image`);
  });
  document.querySelectorAll('.doc-signature').forEach((sig) => {
    [sig, ...sig.querySelectorAll('pre, code')].forEach((e) => {
      if (e.scrollWidth > e.clientWidth + 1) say(`signature ${label(sig)}: ${e.scrollWidth} px in a ${e.clientWidth} px box`);
    });
  });
  const text = document.body.innerText;
  const role = text.match(/:(?:py:)?(?:func|meth|class|mod|data|attr|obj|exc|const):/);
  out.roles = role ? role[0] : null;
  out.fence = text.includes('```');
  return out;
})"""

WIDTHS = (1280, 390)   # a desktop window and a phone


def test_pages_in_headless_chromium(site, tmp_path):
    """Every page at 1280 px and at 390 px: no JavaScript error or failed load; the page never scrolls
    sideways; every table and display equation sits in a box that scrolls sideways, fits the column and
    reaches its end, and no table's cells run over the table (at 1280 px no table or equation needs to scroll
    at all); every figure loads and links to its full-size image; no API signature overflows its box; all math
    rendered by KaTeX; no Sphinx role or literal fence left as text."""
    from _browser import headless, serve

    start = time.monotonic()
    problems, checked = [], 0
    with headless(tmp_path / "profile") as cdp, serve(site) as base:
        for width in WIDTHS:
            cdp.set_width(width)
            for path in pages(site):
                rel = path.parent.relative_to(site).as_posix()
                name = f"{rel if rel != '.' else 'home'} at {width} px"
                cdp.load(f"{base}/{rel + '/' if rel != '.' else ''}")  # waits for late messages (search index)
                result = cdp.evaluate(f"{CHECK_PAGE}({json.dumps(width >= 1000)})")
                problems += cdp.problems(name)
                problems += [f"{name}: {p}" for p in result["problems"]]
                problems += [f"{name}: image not loaded: {src}" for src in result["images"]]
                if result["roles"]:
                    problems.append(f"{name}: a Sphinx role shows as text: {result['roles']}")
                if result["fence"]:
                    problems.append(f"{name}: a literal ``` shows as text")
                checked += 1
    assert checked >= 25 * len(WIDTHS), f"only {checked // len(WIDTHS)} pages were found in the built site"
    assert not problems, "\n".join(problems)
    assert time.monotonic() - start < 120, "the browser check should take well under two minutes"
