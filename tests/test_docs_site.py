"""The documentation site: what its pages take from the README and the code arrives whole and right, and the
built site reads well in a browser.

* README sections included by a page (``<!-- readme: TITLE -->``) equal the README's text under that heading,
  found by an independent Markdown parser (markdown-it), and their code blocks are on the built page.
* Config tables leave out the fields an algorithm refuses, and escape what they show.
* The built HTML has no Sphinx role left as text, no literal code fence, no private parameter, and no script
  or stylesheet from another host (the site reads the same offline).
* Every page in headless Chromium at 1280 px: no JavaScript error or failed load, no table wider than its
  column, all math rendered by KaTeX, every image loaded. Skipped where Chromium is not installed (``.ci/run``
  installs it with apt-get, so CI runs it).

The site is built once per test session (``mkdocs build --strict``), shared by pytest-xdist's workers.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import html
import html.parser
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
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

    from purerl.run.rundir import algo_module

    expected_refused = {"ppo": set(), "a2c": set(), "reinforce": {"recurrent"}, "a3c": {"recurrent"},
                        "trpo": {"recurrent", "shared_network"}, "ddpg": set(), "td3": set(), "sac": set(),
                        "sac_discrete": set()}
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
                config_cls(**{name: not default}).validate()
    # generated cells are escaped: `brax/<name>` is text, not an HTML tag; `-|A|` does not split a cell
    assert "brax/&#60;name&#62;" in hooks().config_table("ppo")
    sac = hooks().config_table("sac")
    row = next(line for line in sac.splitlines() if line.startswith("| <code>target&#95;entropy</code>"))
    assert row.count("|") == 5 and "-&#124;A&#124;" in row    # four cells


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


def test_readme_code_arrives_on_the_built_pages(site):
    readme = (ROOT / "README.md").read_text()
    for page, title in includes():
        built = site / Path(page).with_suffix("") / "index.html"
        pres = [re.sub(r"\s+", " ", t).strip() for t in parse(built).pres]
        for block in fenced_blocks(markdown_it_section(readme, title)):
            code = re.sub(r"\s+", " ", block).strip()
            assert code in pres, f"docs/{page}: a code block of README section {title!r} is missing:\n{block}"
    text = "".join(parse(site / "getting-started" / "index.html").text)
    assert 'result = jax.jit(train)(jax.random.key(0))' in text
    # highlighted at build time: Pygments' token classes are in the HTML
    assert '<span class="kn">import</span>' in (site / "getting-started" / "index.html").read_text()


# metrics only one algorithm (or family) logs: each must be on its page's metrics table
OWN_METRICS = {"ppo": ("approx_kl", "clip_frac", "kl_stopped"), "reinforce": ("baseline", "complete_frac"),
               "a2c": ("grad_norm",), "a3c": ("staleness",), "trpo": ("kl", "accepted", "line_search_steps"),
               "ddpg": ("target_q", "eval_return"), "td3": ("target_q", "eval_return"),
               "sac": ("alpha", "alpha_loss", "eval_return"), "sac_discrete": ("alpha", "alpha_loss", "eval_return")}


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
        assert ("shared_network" in config_rows) == (algo not in ("trpo", *OFF_POLICY)), algo
    assert "brax/<name>" in "".join(parse(site / "algorithms" / "ppo" / "index.html").text)
    train = (site / "api" / "index.html").read_text()
    assert "_resume" not in train
    for page, names in {"api-envs": ["purerl.envs.make", "purerl.envs.base.VecEnv"],
                        "api-training": ["purerl.core.loop.Trainer", "purerl.core.onpolicy.policy_gradient_loss",
                                         "purerl.core.offpolicy.critic_loss", "purerl.core.offpolicy.td_target"],
                        "api-networks": ["purerl.networks.ActorCritic", "purerl.networks.QEnsemble"],
                        "api": ["purerl.sweep.SweepResult"],
                        "algorithms/ppo": ["purerl.ppo.loss"], "algorithms/trpo": ["purerl.trpo.surrogate"],
                        "algorithms/ddpg": ["purerl.ddpg.actor_loss"],
                        "algorithms/sac": ["purerl.sac.actor_loss", "purerl.sac.temperature_loss"],
                        "algorithms/sac_discrete": ["purerl.sac_discrete.actor_loss",
                                                    "purerl.sac_discrete.soft_value"]}.items():
        built = (site / page / "index.html").read_text()
        for name in names:
            assert f'id="{name}"' in built, f"{page}: {name} is not documented"
    notebook = (site / "notebooks" / "claims" / "index.html").read_text()
    assert notebook.count("<img ") >= 5 and "nothing is executed" in notebook


# --- in a browser --------------------------------------------------------------------------------------------

def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page target."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, timeout: float = 30, **params) -> dict:
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))))

    def drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=max(0.01, end - time.monotonic()))))
            except TimeoutError:
                return


# Runs in each page once it has loaded: what a reader at 1280 px would see wrong.
CHECK_PAGE = r"""(() => {
  const out = {tables: [], math: [], images: [], roles: null, fence: false};
  const content = document.querySelector('.wy-nav-content') || document.body;
  const right = content.getBoundingClientRect().right;
  document.querySelectorAll('.rst-content table').forEach((t, i) => {
    const box = t.parentElement;
    const r = t.getBoundingClientRect();
    if (r.right > right + 1 || t.scrollWidth > t.clientWidth + 1 || box.scrollWidth > box.clientWidth + 1) {
      const head = (t.querySelector('tr') || t).innerText.replace(/\s+/g, ' ').slice(0, 80);
      out.tables.push(`table ${i + 1} (${head}): ${Math.round(Math.max(t.scrollWidth, box.scrollWidth))} px wide in a ${Math.round(box.clientWidth)} px column`);
    }
  });
  document.querySelectorAll('.arithmatex').forEach((m) => {
    if (!m.querySelector('.katex')) out.math.push('unrendered: ' + m.textContent.slice(0, 60));
    else if (m.scrollWidth > m.clientWidth + 1) out.math.push('wider than its column: ' + m.textContent.slice(0, 60));
  });
  document.querySelectorAll('img').forEach((img) => {
    if (!img.complete || img.naturalWidth === 0) out.images.push(img.getAttribute('src'));
  });
  const text = document.body.innerText;
  const role = text.match(/:(?:py:)?(?:func|meth|class|mod|data|attr|obj|exc|const):/);
  out.roles = role ? role[0] : null;
  out.fence = text.includes('```');
  return JSON.stringify(out);
})()"""


def test_pages_in_headless_chromium(site, tmp_path):
    binary = chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser check: .ci/run installs Chromium with apt-get")
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run installs it)")
    pytest.importorskip("websockets", reason="the docs extra is not installed (no websockets)")
    start = time.monotonic()
    profile = tmp_path / "profile"
    browser = subprocess.Popen(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--disable-background-networking", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "--window-size=1280,1000", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        stack = contextlib.ExitStack()
        stack.__enter__()
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert browser.poll() is None, "Chromium exited at start"
            assert time.monotonic() < deadline, "Chromium did not open its DevTools port in 30 s"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            target = next(t for t in json.load(r) if t["type"] == "page")
        from websockets.sync.client import connect

        ws = stack.enter_context(connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=20))
        cdp = DevTools(ws)
        for domain in ("Page", "Runtime", "Log"):
            cdp.call(f"{domain}.enable")
        cdp.call("Emulation.setDeviceMetricsOverride", width=1280, height=1000, deviceScaleFactor=1, mobile=False)
        problems, checked = [], 0
        with serve(site) as base:
            for path in pages(site):
                rel = path.parent.relative_to(site).as_posix()
                url = f"{base}/{rel + '/' if rel != '.' else ''}"
                cdp.events.clear()
                cdp.call("Page.navigate", url=url)
                cdp.wait_for("Page.loadEventFired")
                cdp.drain(0.2)  # late console messages (the search index loads after the page)
                result = json.loads(cdp.call("Runtime.evaluate", expression=CHECK_PAGE,
                                             returnByValue=True)["result"]["value"])
                name = rel if rel != "." else "home"
                for e in cdp.events:
                    p = e.get("params", {})
                    if e.get("method") == "Runtime.exceptionThrown":
                        d = p["exceptionDetails"]
                        problems.append(f"{name}: JavaScript error: "
                                        f"{d.get('exception', {}).get('description') or d.get('text')}")
                    elif e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                        problems.append(f"{name}: console error: "
                                        f"{' '.join(str(a.get('value', a.get('description'))) for a in p['args'])}")
                    elif e.get("method") == "Log.entryAdded" and p["entry"]["level"] == "error":
                        problems.append(f"{name}: {p['entry']['text']} {p['entry'].get('url', '')}")
                problems += [f"{name}: {t}" for t in result["tables"]]
                problems += [f"{name}: math {m}" for m in result["math"]]
                problems += [f"{name}: image not loaded: {src}" for src in result["images"]]
                if result["roles"]:
                    problems.append(f"{name}: a Sphinx role shows as text: {result['roles']}")
                if result["fence"]:
                    problems.append(f"{name}: a literal ``` shows as text")
                checked += 1
        assert checked >= 25, f"only {checked} pages were found in the built site"
        assert not problems, "\n".join(problems)
        assert time.monotonic() - start < 60, "the browser check should take well under a minute"
    finally:
        stack.close()
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
