"""mkdocs hooks: pages take parts of the README, other files of the repository and tables generated from the
code, so each text has one copy.

In a page's Markdown:

    <!-- readme: Python API -->     the README section under that heading (any level), without the heading:
                                    up to the next heading of the same or a higher level *outside fenced code*
                                    (a ``# comment`` line inside a ```python block is not a heading)
    <!-- file: CHANGELOG.md -->     a Markdown file of the repository, without its first-level title
    <!-- config-fields: ppo -->     a table of every Config field of purerl.ppo that the algorithm accepts:
                                    name, default, static or leaf, meaning (fields it refuses, such as
                                    ``recurrent`` for REINFORCE, are left out); cells are escaped
    <!-- metrics: ppo -->           the metrics one update of purerl.ppo returns, read from the code (the keys
                                    of ``jax.eval_shape`` of its ``update``), each with its meaning from
                                    METRIC_MEANINGS below
    <!-- results: ppo -->           purerl.ppo's measured runs from docs/results/algorithms.json (written by
                                    benchmarks/algorithms.py): where and when, a table of the final returns'
                                    IQM and 95% CI, budget and wall time, and the learning-curve figure
    <!-- results-table: NAME -->    the Markdown table a benchmark script wrote into docs/results/NAME.json
                                    (its ``markdown`` lines), under the line naming its date, machine and jax
    <!-- claims-table -->           the claims table of docs/results/claims.json (benchmarks/claims.py)
    <!-- results-cells: SUITE -->   the results table of one suite from docs/results/cells/*.json (written by
                                    benchmarks/results.py, whose ``suite_table`` renders it) and its curves

Every measured number on a page comes from a results file through one of these, so it carries the date, the
machine and the jax version of its measurement and cannot be edited by hand apart from its source.

Generated files (nothing of them is committed):

    notebooks/NAME.md               each notebooks/NAME.ipynb as a page: Markdown cells as they are, code cells
                                    highlighted, stored outputs (text, PNG and GIF images) shown, with a note
                                    saying how they were computed; nothing is executed
    assets/pygments.css             the colours of the code highlighted at build time (pymdownx.highlight)

Every built page's images are links to themselves (``on_page_content``: :func:`link_figures`), so a figure
shrunk to a phone's column opens at full size.

And a Griffe extension for mkdocstrings (``docs/hooks.py:SphinxRoles`` in mkdocs.yml): the docstrings are
written with Sphinx roles (``:func:`make```, ``:class:`~purerl.core.loop.Trainer```); each becomes a link to
the object's documentation where the site has one (a code span otherwise), the reStructuredText ``::`` before
a literal block becomes ``:``, and parameters whose names start with ``_`` are left out of signatures.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import html
import json
import logging
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("mkdocs.hooks.purerl")

# --- Markdown structure: headings outside fenced code ------------------------------------------------------

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")


def headings(text: str) -> list[tuple[int, int, str]]:
    """``(line index, level, title)`` of every ATX heading of ``text`` that is not inside a fenced code block
    (```` ``` ```` or ``~~~``, closed by a fence of the same character at least as long)."""
    return _scan(text)[0]


def _scan(text: str) -> tuple[list[tuple[int, int, str]], str | None]:
    """The headings outside fenced code, and the fence still open at the end of ``text`` (None if none)."""
    out, fence = [], None
    for i, line in enumerate(text.splitlines()):
        m = _FENCE_OPEN.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not m.group(2).strip():
                fence = None
            continue
        if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
            fence = m.group(1)
            continue
        h = _HEADING.match(line)
        if h:
            out.append((i, len(h.group(1)), h.group(2).strip()))
    return out, fence


def section(text: str, title: str) -> str:
    """The body of the section of ``text`` under the heading ``title`` (without the heading line), up to the
    next heading of the same or a higher level outside fenced code; a ``ValueError`` if there is none."""
    lines = text.splitlines()
    found = headings(text)
    for n, (i, level, t) in enumerate(found):
        if t == title:
            end = next((j for j, lv, _ in found[n + 1:] if lv <= level), len(lines))
            body = "\n".join(lines[i + 1:end])
            if _scan(body)[1] is not None:  # cannot happen when the README's fences are closed
                raise ValueError(f"docs: README section {title!r} ends inside a code block")
            return body
    raise ValueError(f"docs: the README has no section {title!r}")


def relink(body: str) -> str:
    """Links relative to the repository root, as the README writes them, for a page of the site: ``docs/X``
    becomes a link between pages, a link to any other file its path (the site does not hold the file)."""
    return re.sub(r"\[([^\]]+)\]\((?!https?://|#)([^)]+)\)", _link, body)


def _link(m: re.Match) -> str:
    text, target = m.group(1), m.group(2)
    if target.startswith("docs/"):
        return f"[{text}]({target[len('docs/'):]})"
    return text if text.strip("`") == target else f"{text} (`{target}`)"


def readme_section(title: str) -> str:
    return relink(section((ROOT / "README.md").read_text(), title)).strip() + "\n"


def repo_file(path: str) -> str:
    """A Markdown file of the repository for a page: its ``# title`` line dropped (the page has its own)."""
    text = (ROOT / path).read_text()
    return re.sub(r"\A# [^\n]*\n", "", text).strip() + "\n"


# --- table cells -------------------------------------------------------------------------------------------

# Characters that Markdown, the table syntax, HTML or the math extension would read as markup.
_CELL_ESCAPES = {c: f"&#{ord(c)};" for c in "&<>|*_`[]\\$"}


def cell(text: str) -> str:
    """``text`` as the literal content of a Markdown table cell (``brax/<name>`` stays ``brax/<name>``)."""
    return "".join(_CELL_ESCAPES.get(c, c) for c in " ".join(str(text).split()))


def code_cell(text: str) -> str:
    return f"<code>{cell(text)}</code>"


# --- Config tables -----------------------------------------------------------------------------------------

def refused_fields(config_cls: type) -> set[str]:
    """Fields ``config_cls`` refuses to change from their defaults: ``recurrent`` where the algorithm has no
    recurrent policy (``_recurrent_supported``), and any switch whose other value, with every other field
    at its default, fails validation naming that field (TRPO's ``shared_network``; a field whose ``_applies``
    rule never holds), and any field whose ``_applies`` rule is :func:`purerl.config.never` (DQN's
    ``actor_lr``)."""
    from purerl.config import never

    names = {f.name for f in dataclasses.fields(config_cls)}
    out = set()
    rules: dict = {}
    for klass in reversed(config_cls.__mro__):   # merged as Validated merges them: a subclass's rule wins
        rules.update(vars(klass).get("_applies", {}))
    out.update(name for name, (rule, _) in rules.items() if rule is never)
    if "recurrent" in names and not getattr(config_cls, "_recurrent_supported", True):
        out.add("recurrent")
    for f in dataclasses.fields(config_cls):
        if f.name in out or not isinstance(f.default, bool):
            continue
        try:
            config_cls(**{f.name: not f.default}).validate()
        except ValueError as e:
            if f"`{f.name}`" in str(e):
                out.add(f.name)
    return out


def config_table(algo: str) -> str:
    from purerl.config import schema
    from purerl.algorithms import module as algo_module

    config_cls = algo_module(algo).Config
    refused = refused_fields(config_cls)
    rows = ["| field | default | type | meaning |", "|---|---|---|---|"]
    for s in schema(config_cls).values():
        if s.name in refused:
            continue
        rows.append(f"| {code_cell(s.name)} | {code_cell(repr(s.default))} | "
                    f"{cell(s.type_text)}; {'static' if s.static else 'leaf (vmappable)'} | {cell(s.help)} |")
    if refused:
        rows.append("")
        rows.append(f"`purerl.{algo}` refuses " + ", ".join(f"`{n}`" for n in sorted(refused))
                    + " (a `ValueError` names the field), so the table leaves "
                    + ("it" if len(refused) == 1 else "them") + " out.")
    return "\n".join(rows) + "\n"


# --- metrics tables ----------------------------------------------------------------------------------------

METRIC_MEANINGS = {
    # every algorithm
    "episode_return": "mean undiscounted return of the episodes that finished in this update (or log point); "
                      "carried forward from the previous one when none finished",
    "episode_length": "mean length of those episodes, carried forward the same way",
    "episodes": "how many episodes finished (summed over envs)",
    "env_steps": "env steps of the run so far (float32 inside the program; the run directory's files hold "
                 "the exact int64 count)",
    # on-policy
    "policy_loss": "policy-gradient loss (for PPO the clipped surrogate, negated), mean over the update's "
                   "minibatches",
    "value_loss": "0.5 x mean squared error of the value function against its targets",
    "entropy": "mean entropy of the policy on the batch (SAC: the estimate -mean log pi of its actions; "
               "discrete SAC: exact, -sum_a pi log pi)",
    "grad_norm": "global norm of the gradient before clipping",
    "approx_kl": "mean (r - 1) - log r over the minibatch, r the probability ratio: an estimate of "
                 "KL(pi_old || pi)",
    "clip_frac": "fraction of steps whose ratio lies outside [1 - clip_eps, 1 + clip_eps]",
    "learning_rate": "the step size used in this update (after annealing)",
    "kl_stopped": "1 when target_kl stopped this update's minibatches early, else 0",
    "baseline": "mean baseline b subtracted from the returns (0 without one)",
    "complete_frac": "fraction of the rollout's steps that count: in each env's first episode of the "
                     "rollout, which ended inside it",
    "staleness": "mean staleness (in updates) of the round's worker gradients",
    "kl": "mean KL(pi_old || pi) of the accepted step (0 when the line search accepted none)",
    "surrogate_improvement": "gain of the surrogate objective by the accepted step (0 when none was "
                             "accepted)",
    "expected_improvement": "the improvement the linear model predicts for the full step: g . step",
    "accepted": "1 when the line search accepted a step, else 0 (its mean is the accepted fraction)",
    "line_search_steps": "line-search candidates tried (line_search_steps when none was accepted)",
    # off-policy
    "eval_return": "mean return of the deterministic policy over eval_episodes episodes at the end of the "
                   "log point",
    "critic_loss": "mean squared TD error of the critics against the target",
    "actor_loss": "actor loss (DDPG/TD3: -mean Q1(s, mu(s)); SAC: mean alpha log pi - min Q; discrete SAC: "
                  "mean sum_a pi (alpha log pi - min Q)); NaN where TD3's delayed actor took no step",
    "q": "mean Q value of the sampled batch's actions (first critic, or the ensemble mean; PQN: of the "
         "minibatches' actions)",
    "target_q": "mean TD target r + gamma (1 - terminated) Q'(s', a') (DQN: its n-step form, with max_a or "
                "Double DQN's action in place of a')",
    "td_loss": "the TD loss of the Q-network against its targets (Huber's or half the squared error), mean over "
               "the log point's gradient steps (PQN: against the Q(lambda) returns, over the update's minibatches)",
    "epsilon": "the exploration epsilon at the end of the log point (the linear schedule over env steps; PQN: "
               "the epsilon of this update's rollout, the schedule over updates)",
    "lambda_return": "mean Q(lambda) return of the rollout: the target the Q-network regresses on (PQN)",
    "alpha": "the entropy temperature",
    "alpha_loss": "the temperature's loss -log(alpha) (target_entropy - entropy)",
    "gradient_steps": "gradient steps taken so far",
}


@functools.lru_cache(maxsize=None)
def metric_names(algo: str) -> tuple[str, ...]:
    """The metrics one ``update`` of the algorithm's default config returns: traced, never compiled or run."""
    import warnings

    import jax

    from purerl.algorithms import module as algo_module

    with warnings.catch_warnings():  # the library's own deprecation notices are not the docs' business
        warnings.simplefilter("ignore", DeprecationWarning)
        trainer = algo_module(algo).make(algo_module(algo).Config())
        state = jax.eval_shape(trainer.init, jax.random.key(0))
        _, metrics = jax.eval_shape(trainer.update, state)
    return tuple(sorted(metrics))


def metrics_table(algo: str) -> str:
    rows = ["| metric | meaning |", "|---|---|"]
    for name in metric_names(algo):
        meaning = METRIC_MEANINGS.get(name)
        if meaning is None:
            log.warning(f"docs/hooks.py: purerl.{algo} logs `{name}`, which METRIC_MEANINGS does not describe")
            meaning = ""
        rows.append(f"| {code_cell(name)} | {cell(meaning)} |")
    return "\n".join(rows) + "\n"


# --- measured results ------------------------------------------------------------------------------------

RESULTS = ROOT / "docs" / "results"


def _results(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"docs: no {path.relative_to(ROOT)}; run the benchmark script that writes it")
    return json.loads(path.read_text())


def provenance_text(p: dict) -> str:
    """A measurement's date, machine and versions as a page states them: benchmarks/provenance.py's
    ``describe`` (one copy, loaded from its file: the benchmarks folder is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("purerl_benchmarks_provenance",
                                                  ROOT / "benchmarks" / "provenance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.describe(p)


def ci_text(d: dict, fmt: str = ".1f") -> str:
    if d.get("iqm") is None:
        return "no finished episode"
    return f"{d['iqm']:{fmt}} [{d['low']:{fmt}}, {d['high']:{fmt}}]"


def budget_text(b: dict) -> str:
    parts = [f"{b['env_steps_per_seed']:,} env steps per seed"]
    if "num_workers" in b:
        parts.append(f"{b['num_workers']} workers x {b['num_envs']} envs x {b['num_steps']} steps per round")
    elif "num_steps" in b:
        parts.append(f"{b['num_envs']} envs x {b['num_steps']} steps per update")
    else:
        parts.append(f"{b['num_envs']} env(s), batch {b.get('batch_size')}, {b.get('learning_starts')} warm-up "
                     f"steps")
    if "hidden_sizes" in b:
        parts.append("x".join(str(h) for h in b["hidden_sizes"]) + " networks")
    parts.append(f"{b['log_points']} log points")
    return "; ".join(parts)


def _loaded(p: dict) -> bool:
    """Whether a measurement ran on a machine that other jobs shared: its load average above its cores."""
    load = p.get("load_average")
    return bool(load and p.get("cores") and load > p["cores"])


def training_return_text(r: dict) -> str:
    """What a run's "during training" return is, as a table cell: which metric, over which log points."""
    points = r["budget"]["log_points"]
    tail = max(1, points // 20)
    metric = code_cell(r["metric"])
    if r["metric"] == "episode_return":
        return (f"training episodes ({metric}: the episodes the sampling policy finished) in the last {tail} of "
                f"{points} updates")
    episodes = r["budget"].get("eval_episodes")
    if tail == 1:
        return f"the deterministic evaluation during training ({metric}, {episodes} episodes) at the last log point"
    return (f"the deterministic evaluations during training ({metric}, {episodes} episodes each) at the last "
            f"{tail} of {points} log points")


def results_links(algo: str) -> str:
    """A line linking an algorithm's rows on the Results page (benchmarks/results.py's cells of its presets), or
    nothing where it has none."""
    results = _benchmark_module("results")
    suites = sorted({c.suite for c in results.CELLS if results.algo_of(c) == algo})
    if not suites:
        return ""
    links = ", ".join(f"[{results.SUITE_TITLES.get(s, s)}](../tables.md#{s})" for s in suites)
    return f"\nBeyond classic control: its rows of the Results page, {links}, beside published numbers.\n"


def algorithm_results(algo: str, data: dict | None = None) -> str:
    """purerl.ALGO's runs in docs/results/algorithms.json (or ``data``, that file's content) as a page section
    (see the module docstring), and the link to its rows on the Results page."""
    data = _results("algorithms") if data is None else data
    runs = data["runs"].get(algo)
    if not runs:
        raise ValueError(f"docs: docs/results/algorithms.json has no runs of {algo}; run "
                         f"`python benchmarks/algorithms.py --only {algo}`")
    p = runs[0]["provenance"]
    seeds = runs[0]["budget"]["seeds"]
    loaded = _loaded(p)
    times = " (shared machine)" if loaded else ""
    tiny = " **Tiny budgets: these numbers measure nothing.**" if any(r.get("tiny") for r in runs) else ""
    lines = [f"Measured by `python benchmarks/algorithms.py` ({provenance_text(p)}): each run is a shipped "
             f"preset, {seeds} seeds trained as one program, `jax.jit(jax.vmap(train))(keys)`; then each seed's "
             f"final policy is evaluated again, deterministically, on newly drawn episodes. A return is the IQM "
             f"over the seeds with its 95% stratified-bootstrap confidence interval in brackets "
             f"(`purerl.run.stats.iqm_ci`, 10,000 resamples).{tiny}", "",
             f"| env (preset) | budget | return during training | final policy, evaluated afresh | "
             f"compile{times} | run, all seeds{times} |",
             "|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {cell(r['env'])} ({code_cell(r['preset'])}) | {cell(budget_text(r['budget']))} | "
                     f"{ci_text(r['final'])}: {training_return_text(r)} | "
                     f"{ci_text(r['eval'])}: deterministic, {r['eval']['episodes']} new episodes per seed | "
                     f"{r['compile_s']:.1f} s | {r['run_s']:.1f} s |")
    if runs[0]["metric"] == "episode_return":
        what = ("The two returns measure different policies: during training, the return of the episodes that "
                "the sampling policy played while it still learned (its exploration noise included); afresh, the "
                "final parameters' deterministic policy (the mode of each action distribution, or PQN's greedy "
                "action).")
    else:
        gaps = [abs(f - e) for r in runs for f, e in zip(r["final"]["per_seed"], r["eval"]["per_seed"])
                if f is not None and e is not None]
        what = ("Both returns evaluate the same final deterministic policy, on different episodes: during training "
                "on the evaluation episodes of the last log point, afresh on as many newly drawn ones. They differ "
                "only by the episodes' initial states"
                + (f" (per seed by up to {max(gaps):.0f} here)" if gaps else "")
                + ", so their gap shows how much a mean over this many episodes depends on the episodes drawn.")
    load = p.get("load_average")
    shared = (f" The machine was shared with other jobs while it ran (load average {load:.1f} on {p['cores']} "
              f"cores), so these wall times are longer than on an idle machine." if loaded else "")
    lines += ["", what + " Compile is tracing plus XLA's compilation, timed apart from the run (the first call of "
              f"the compiled program, which is the whole training run of every seed).{shared} The curves below "
              "show "
              + ("the training episodes' return (with the policy's sampling noise) at each update"
                 if runs[0]["metric"] == "episode_return" else
                 "the deterministic policy's evaluation return at each log point")
              + ": the IQM and its 95% CI at each point (2,000 resamples), and every seed in grey.", "",
              f"![{algo.upper()}: IQM and 95% CI over {seeds} seeds against environment steps]"
              f"(../figures/algorithms/{algo}.png)"]
    return "\n".join(lines) + "\n" + results_links(algo)


CLAIM_VERDICTS = {True: "holds", False: "**FAILS**", None: "(reported)", "inconclusive": "inconclusive"}


def _numbers(nums: list[int]) -> str:
    """1, 2, 3, 5 as "1-3 and 5"."""
    runs: list[list[int]] = []
    for n in sorted(nums):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    parts = [f"{r[0]}-{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _claims_of_the_run(data: dict) -> str:
    """"all claims", or where later runs measured some claims again, the claims the file's own run measured."""
    later = {n for u in data.get("updates", []) for n in u["claims"]}
    if not later:
        return "all claims"
    return f"claims {_numbers(sorted({r['claim'] for r in data['rows']} - later))}"


def _claims_updates(data: dict) -> str:
    """The claims that a later run measured on their own (``benchmarks/claims.py --only``), with its provenance."""
    out = ""
    for u in data.get("updates", []):
        many = len(u["claims"]) > 1
        out += (f" {'Claims' if many else 'Claim'} {_numbers(u['claims'])} measured later by a run of "
                f"{'their' if many else 'its'} own (`python benchmarks/claims.py --only "
                f"{','.join(map(str, u['claims']))}`: {provenance_text(u['provenance'])}, "
                f"{u['seconds']:.0f} s, seed {u['seed']}).")
    return out


def claims_table() -> str:
    """docs/results/claims.json (benchmarks/claims.py) as a page states it: where and when, then one row per
    measured quantity with its verdict (second, so that a phone shows it without scrolling), its value (IQM
    [95% CI] over the seeds), the pass rule that produced the verdict and the quantity measured."""
    data = _results("claims")
    tiny = " **Tiny budgets: these numbers measure nothing.**" if data.get("tiny") else ""
    rejudged = (f" Verdicts read from the stored data with the rules below on {data['rejudged']} "
                f"(`python benchmarks/claims.py --rejudge`)." if data.get("rejudged") else "")
    lines = [f"Measured by `python benchmarks/claims.py` ({provenance_text(data['provenance'])}; "
             f"{data['seconds'] / 60:.0f} minutes for {_claims_of_the_run(data)}), {data['seeds']} seeds or more per "
             f"value, seed "
             f"{data['seed']}.{_claims_updates(data)}{tiny}{rejudged}", "",
             "| # | claim | verdict | value: IQM [95% CI] | pass rule | measured quantity |",
             "|---|---|---|---|---|---|"]
    for r in data["rows"]:
        verdict = CLAIM_VERDICTS[r["verdict"]]
        lines.append(f"| {r['claim']} | {cell(r['statement'])} | {verdict} | {cell(r['value'])} | "
                     f"{cell(r.get('rule') or 'none: reported')} | {cell(r['quantity'])} |")
    return "\n".join(lines) + "\n"


@functools.cache
def _benchmark_module(name: str):  # noqa: ANN202 - a module
    """benchmarks/NAME.py, loaded from its file (the benchmarks folder is not a package)."""
    import importlib.util
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(f"purerl_benchmarks_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module      # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def results_cells(suite: str) -> str:
    """The results table of ``suite`` (benchmarks/results.py's cells), where and when its cells ran, and its
    curves where they are drawn."""
    results = _benchmark_module("results")
    records = [r for r in results.load_cells() if r.get("suite") == suite and not r.get("tiny")]
    when = sorted({provenance_text(r["provenance"]) for r in records})
    lines = [results.suite_table(records, suite), ""]
    if when:
        lines.append("Measured by `python benchmarks/results.py` (" + "; ".join(when) + ").")
    figure = ROOT / "docs" / "figures" / "results" / f"{suite}.png"
    if figure.is_file():
        lines += ["", f"![{results.SUITE_TITLES.get(suite, suite)}: learning curves, IQM and 95% CI per algorithm]"
                      f"(figures/results/{suite}.png)"]
    return "\n".join(lines) + "\n"


def results_table(name: str) -> str:
    """The ``markdown`` lines a benchmark script stored in docs/results/NAME.json, as they are."""
    data = _results(name)
    return "\n".join(data["markdown"]) + "\n"


# --- citation ----------------------------------------------------------------------------------------------

def _bib(value: str) -> str:
    return re.sub(r"([{}&%$#_])", r"\\\1", str(value))


def bibtex(cff: str | None = None) -> str:
    """The BibTeX entry of CITATION.cff (``cff``: its text; default the repository's file): title, authors,
    version, year (``date-released``), DOI, URL (``repository-code`` or ``url``) and licence, as far as the file
    gives them; nothing is added that it does not hold."""
    import yaml

    meta = yaml.safe_load(cff if cff is not None else (ROOT / "CITATION.cff").read_text())
    authors = []
    for a in meta.get("authors", []):
        if "name" in a:                                  # an entity, such as a team: kept whole
            authors.append("{" + _bib(a["name"]) + "}")
        else:
            authors.append(", ".join(_bib(a[k]) for k in ("family-names", "given-names") if a.get(k)))
    fields = [("title", "{" + _bib(meta["title"]) + "}"), ("author", " and ".join(authors))]
    if meta.get("version"):
        fields.append(("version", _bib(meta["version"])))
    if meta.get("date-released"):
        fields.append(("year", str(meta["date-released"])[:4]))
    if meta.get("doi"):
        fields.append(("doi", _bib(meta["doi"])))
    url = meta.get("repository-code") or meta.get("url")
    if url:
        fields.append(("url", url))
    if meta.get("license"):
        fields.append(("license", _bib(meta["license"])))
    key = re.sub(r"\W", "", meta["title"].split(":")[0].lower()) or "software"
    return "@software{" + key + ",\n" + "".join(f"  {k} = {{{v}}},\n" for k, v in fields) + "}\n"


# --- notebooks ---------------------------------------------------------------------------------------------

def _fence(text: str, lang: str = "") -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    ticks = "`" * (longest + 1)
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}\n"


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def notebook_markdown(path: Path, images: dict[str, bytes]) -> str:
    """A notebook as a Markdown page; its PNG and GIF outputs are added to ``images`` (``name -> bytes``) and linked
    as ``{stem}/{name}``. Outputs are shown as stored: nothing is executed."""
    nb = json.loads(path.read_text())
    lang = nb.get("metadata", {}).get("language_info", {}).get("name", "python")
    stored = any(c.get("outputs") for c in nb["cells"])
    mode = nb.get("metadata", {}).get("purerl", {}).get("executed", {}).get("mode")
    if not stored:
        how = ", which holds no outputs: run it to see them (`jupyter lab`, from `notebooks/`)"
    elif mode == "small":
        how = (" with the outputs of an execution in its small mode (`python notebooks/execute.py`, "
               "`PURERL_NOTEBOOK_SMALL=1`): tiny budgets that show every cell at work, not what the real "
               "budgets reach; run it without the variable for those")
    elif mode == "results":
        how = (" with the outputs of an execution that reads the stored results (`docs/results/claims.json`, "
               "the numbers of the Claims page) and measures nothing")
    else:
        how = " with its outputs"
    note = (f"!!! note \"`notebooks/{path.name}`\"\n    Rendered from the notebook as stored{how}; nothing is "
            "executed when the site is built.\n")
    parts = []
    for n, c in enumerate(nb["cells"]):
        source = "".join(c.get("source", ""))
        if c["cell_type"] == "markdown":
            parts.append(source.strip() + "\n")
            if note and parts[0].startswith("# "):  # the note goes under the notebook's title
                parts.append(note)
                note = ""
            continue
        if note:
            parts.append(note)
            note = ""
        if c["cell_type"] != "code" or not source.strip():
            continue
        parts.append(_fence(source, lang))
        for k, out in enumerate(c.get("outputs", [])):
            kind = out.get("output_type")
            if kind == "stream":
                parts.append(_fence(_strip_ansi("".join(out.get("text", ""))), "text"))
            elif kind == "error":
                parts.append(_fence(_strip_ansi("\n".join(out.get("traceback", []))), "text"))
            elif kind in ("display_data", "execute_result"):
                data = out.get("data", {})
                mime = next((m for m in ("image/png", "image/gif") if m in data), None)
                if mime:
                    name = f"cell{n}_{k}.{mime.split('/')[1]}"
                    images[name] = base64.b64decode("".join(data[mime]))
                    parts.append(f"![output of cell {n}]({path.stem}/{name})\n")
                elif "text/plain" in data:
                    parts.append(_fence("".join(data["text/plain"]), "text"))
    return "\n".join(parts + [note])


def on_files(files, config):  # noqa: ANN001, ANN201 - mkdocs' hook signature
    from mkdocs.structure.files import File
    from pygments.formatters import HtmlFormatter

    css = HtmlFormatter(style="default").get_style_defs(".highlight")
    files.append(File.generated(config, "assets/pygments.css", content=css))
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        images: dict[str, bytes] = {}
        page = notebook_markdown(path, images)
        files.append(File.generated(config, f"notebooks/{path.stem}.md", content=page))
        for name, data in images.items():
            files.append(File.generated(config, f"notebooks/{path.stem}/{name}", content=data))
    return files


# --- the page hook -----------------------------------------------------------------------------------------

def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 - mkdocs' hook signature
    markdown = re.sub(r"<!-- readme: (.+?) -->", lambda m: readme_section(m.group(1).strip()), markdown)
    markdown = re.sub(r"<!-- file: (\S+?) -->", lambda m: repo_file(m.group(1)), markdown)
    markdown = re.sub(r"<!-- config-fields: (\w+) -->", lambda m: config_table(m.group(1)), markdown)
    markdown = re.sub(r"<!-- results: (\w+) -->", lambda m: algorithm_results(m.group(1)), markdown)
    markdown = re.sub(r"<!-- claims-table -->", lambda m: claims_table(), markdown)
    markdown = re.sub(r"<!-- results-table: ([\w.-]+) -->", lambda m: results_table(m.group(1)), markdown)
    markdown = re.sub(r"<!-- results-cells: (\w+) -->", lambda m: results_cells(m.group(1)), markdown)
    return re.sub(r"<!-- metrics: (\w+) -->", lambda m: metrics_table(m.group(1)), markdown)


_TAG = re.compile(r"<a\b[^>]*>|</a\s*>|<img\b[^>]*>", re.I)


def link_figures(page_html: str) -> str:
    """Every image that is not already inside a link becomes a link to itself (``<a class="figure-link"
    href=SRC>``), so a figure shrunk to a narrow column opens at full size."""
    out, depth, last = [], 0, 0
    for m in _TAG.finditer(page_html):
        tag = m.group(0)
        if tag[:2].lower() == "</":
            depth = max(0, depth - 1)
        elif tag[:2].lower() == "<a":
            depth += 1
        elif depth == 0:
            src = re.search(r"""\ssrc=("[^"]*"|'[^']*')""", tag)
            if src:
                out.append(page_html[last:m.start()])
                out.append(f'<a class="figure-link" href={src.group(1)}>{tag}</a>')
                last = m.end()
    out.append(page_html[last:])
    return "".join(out)


def on_page_content(page_html: str, page, config, files) -> str:  # noqa: ANN001 - mkdocs' hook signature
    return link_figures(page_html)


# --- docstrings: Sphinx roles, literal blocks, private parameters ------------------------------------------

_ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|data|attr|obj|exc|const):`([^`]+)`")


def _role_link(obj, text: str) -> str:  # noqa: ANN001 - a griffe object
    m = re.fullmatch(r"\s*(.*?)\s*<([^>]+)>\s*", text)
    title, target = (m.group(1), m.group(2)) if m else (None, text.strip())
    short = target.startswith("~")
    target = target.lstrip("~").lstrip(".")
    if title is None:
        title = target.rsplit(".", 1)[-1] if short else target
    path = target
    if not target.startswith("purerl"):
        try:
            path = obj.resolve(target)
        except Exception:  # noqa: BLE001 - any name griffe cannot place stays a code span
            path = target
    # an optional cross-reference: a link where the site documents `path`, the bare code span where not
    return f'<autoref identifier="{html.escape(path)}" optional><code>{html.escape(title)}</code></autoref>'


def convert_docstring(text: str, obj=None) -> str:  # noqa: ANN001 - a griffe object
    """A Sphinx-style docstring as Markdown for mkdocstrings: roles become cross-references (resolved in
    ``obj``'s scope), ``text::`` before a literal block becomes ``text:``."""
    text = _ROLE.sub(lambda m: _role_link(obj, m.group(1)) if obj is not None else f"`{m.group(1)}`", text)
    text = re.sub(r"(?m)(\S)::$", r"\1:", text)
    return re.sub(r"(?m)^[ \t]*::[ \t]*$", "", text)


try:
    import griffe
except ImportError:  # pragma: no cover - only the docs build loads the extension
    griffe = None

if griffe is not None:

    class SphinxRoles(griffe.Extension):
        """Docstrings for mkdocstrings: see the module docstring."""

        def on_package(self, *, pkg, **kwargs) -> None:  # noqa: ANN001
            seen: set[int] = set()

            def visit(obj) -> None:  # noqa: ANN001
                if id(obj) in seen or obj.is_alias:
                    return
                seen.add(id(obj))
                if obj.docstring is not None:
                    obj.docstring.value = convert_docstring(obj.docstring.value, obj)
                if obj.is_function:
                    for p in [p for p in obj.parameters if p.name.startswith("_")]:
                        del obj.parameters[p.name]
                for member in list(obj.members.values()):
                    visit(member)

            visit(pkg)
