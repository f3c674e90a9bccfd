"""benchmarks/brax_trainers.py: Brax's own trainers beside purerl's Brax cells. What is checked here runs without
brax.training (nothing is trained): the settings handed to Brax's trainers equal the cell's purerl config in env
steps and minibatch sizes, the compile estimate, and a purerl cell taking Brax's file at the same budget as its
reference, compared on the fresh evaluation."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from purerl import algorithms, presets

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def benchmark(name: str):
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


def _cells():
    return benchmark("brax_trainers").brax_cells()


def test_every_brax_preset_of_ppo_and_sac_has_a_cell_beside_brax():
    names = {c.preset for c in _cells()}
    assert {"ppo-brax-inverted-pendulum", "ppo-brax-hopper", "ppo-brax-halfcheetah", "sac-brax-inverted-pendulum",
            "sac-brax-hopper"} <= names


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("name", [c.name for c in benchmark("results").CELLS if c.suite == "brax"])
def test_brax_settings_are_the_cells_config(name, full):
    bt, results = benchmark("brax_trainers"), benchmark("results")
    cell = next(c for c in results.CELLS if c.name == name)
    algo = presets.load(cell.preset).algo
    steps = results.cell_steps(cell, full)
    cfg = cell.config(algorithms.module(algo), steps, full).validate()
    s = bt.brax_settings(cell, cfg, algo)
    assert s["num_envs"] == cfg.num_envs and s["episode_length"] == cfg.episode_length
    assert s["discounting"] == pytest.approx(float(cfg.gamma))
    assert s["normalize_observations"] == cfg.normalize_obs
    if algo == "ppo":
        per_update = cfg.num_envs * cfg.num_steps
        # Brax's env steps per update (batch_size x unroll_length x num_minibatches) and per minibatch are purerl's
        assert s["batch_size"] * s["unroll_length"] * s["num_minibatches"] == per_update
        assert s["batch_size"] * s["unroll_length"] == per_update // cfg.num_minibatches
        assert s["num_updates_per_batch"] == cfg.num_epochs
        assert s["num_timesteps"] == steps // per_update * per_update
        assert (s["num_timesteps"] // per_update) % (s["num_evals"] - 1) == 0   # whole epochs of updates
    else:
        assert s["num_timesteps"] == cfg.iterations * cfg.num_envs         # warm-up included, as purerl counts
        assert s["min_replay_size"] == cfg.learning_starts and s["grad_updates_per_step"] == cfg.gradient_steps
        assert s["batch_size"] == cfg.batch_size and s["reward_scaling"] == float(cfg.reward_scale)
        # Brax's epochs after its warm-up are purerl's log points
        epochs = s["num_evals"] - 1
        assert (s["num_timesteps"] - s["min_replay_size"]) // cfg.num_envs == epochs * cfg.iterations_per_log_point
    if not full and cell.cpu_overrides:
        assert cfg.num_envs == dict(cell.cpu_overrides)["num_envs"]


def test_the_compile_estimate_is_the_first_two_epochs_beyond_the_steady_ones():
    bt = benchmark("brax_trainers")
    # 30 s and 25 s of compilation over epochs of 2 s (the later ones 1.9 to 2.1 s)
    assert bt._compile_estimate(np.array([32.0, 27.0, 2.0, 1.9, 2.1])) == pytest.approx(55.0)
    assert np.isnan(bt._compile_estimate(np.array([30.0, 2.0])))


def test_a_purerl_cell_takes_brax_at_the_same_budget_as_its_reference(tmp_path):
    results, bt = benchmark("results"), benchmark("brax_trainers")
    cell = next(c for c in results.CELLS if c.name == "ppo-brax-hopper/brax/hopper")
    ci = {"iqm": 500.0, "low": 400.0, "high": 600.0, "per_seed": [500.0] * 3}
    brax = {"cell": f"{cell.name} (Brax's trainer)", "algo": "ppo", "library": "brax.training", "env": cell.env,
            "suite": "brax", "steps": 40_960, "asked_steps": 40_960, "seeds": 3,
            "trainer": "brax.training.agents.ppo.train", "brax_version": "0.14.2", "final": dict(ci, iqm=450.0),
            "eval": dict(ci, episodes=16, deterministic=True),
            "compile_s": 10.0, "run_s": 100.0, "env_steps_per_s": 1228.8, "differs": "GAE over unrolls"}
    ours = {"cell": cell.name, "algo": "ppo", "env": cell.env, "suite": "brax", "steps": 40_960, "asked_steps": 40_960,
            "seeds": 6, "final": dict(ci, iqm=100.0), "eval": dict(ci, iqm=250.0, episodes=16, deterministic=True),
            "compile_s": 10.0, "run_s": 10.0, "env_steps_per_s": 24576.0, "references": []}
    (tmp_path / cell.file(40_960).name).write_text(json.dumps(ours))
    assert results.brax_references(cell, 40_960, tmp_path) == []              # no Brax file yet
    (tmp_path / cell.brax_file(40_960).name).write_text(json.dumps(brax))
    assert cell.brax_file(40_960).name == "brax-ppo__brax-hopper__40960.json"
    (ref,) = results.brax_references(cell, 40_960, tmp_path)
    assert ref["value"] == 500.0 and ref["compare"] == "eval" and "brax-ppo__brax-hopper__40960.json" in ref["source"]
    assert results.brax_references(cell, 81_920, tmp_path) == []              # another budget: not this one
    assert bt.link(tmp_path) == [cell.file(40_960).name]
    linked = json.loads((tmp_path / cell.file(40_960).name).read_text())
    assert linked["references"] == [ref]
    table = results.suite_table([linked, brax], "brax", cells=[cell])
    row = next(line for line in table.splitlines() if line.startswith("| PPO | brax/hopper"))
    assert "| 0.50 |" in row                     # purerl's evaluation 250 over Brax's 500, not the final 100
    assert any(line.startswith("| PPO (brax.training) | brax/hopper") for line in table.splitlines())


# --- the presets' reaches lines from the cell files (benchmarks/presets.py --from-cells) ---

def _record(preset, env, steps, iqm, **extra):
    ci = {"iqm": iqm, "low": iqm - 10.0, "high": iqm + 5.0, "per_seed": [iqm] * 6}
    prov = {"date": "2026-12-07 13:00 UTC", "cores": 2, "backend": "cpu", "jax": "0.9.2", "load_average": 1.0}
    return {"cell": f"{preset}/{env}", "preset": preset, "algo": "ppo", "env": env, "suite": "brax",
            "metric": "episode_return", "steps": steps, "asked_steps": steps, "seeds": 6, "budget": "cpu",
            "config": {"num_envs": 128, "total_timesteps": steps, "hidden_sizes": [64, 64, 64, 64]},
            "compile_s": 30.0, "run_s": 120.0, "final": dict(ci, iqm=iqm - 20.0, low=iqm - 30.0, high=iqm - 15.0),
            "eval": dict(ci, episodes=16, deterministic=True), "references": [], "provenance": prov, **extra}


def test_a_reaches_line_from_cells_states_the_budget_the_numbers_and_brax_beside_them(tmp_path):
    results, bench = benchmark("results"), benchmark("presets")
    cell = next(c for c in results.CELLS if c.name == "ppo-brax-hopper/brax/hopper")
    small, big = _record(cell.preset, cell.env, 40_960, 300.0), _record(cell.preset, cell.env, 81_920, 400.0)
    brax = dict(_record(cell.preset, cell.env, 81_920, 500.0, library="brax.training",
                        trainer="brax.training.agents.ppo.train", brax_version="0.14.2"), seeds=3, run_s=900.0)
    for r, name in ((small, cell.file(40_960).name), (big, cell.file(81_920).name),
                    (brax, cell.brax_file(81_920).name)):
        (tmp_path / name).write_text(json.dumps(r))
    big["references"] = results.brax_references(cell, 81_920, tmp_path)
    (tmp_path / cell.file(81_920).name).write_text(json.dumps(big))
    runs = bench.cell_runs(tmp_path)
    assert list(runs) == [cell.preset] and runs[cell.preset][0]["steps"] == 81_920   # the largest budget, not Brax's
    text = bench.reaches_from_cells(runs[cell.preset], tmp_path)
    assert text.startswith("eval return IQM 400.0 [95% CI 390.0, 405.0] over 6 seeds, 16 new deterministic episodes "
                           "each (return during training IQM 380.0 [95% CI 370.0, 385.0]), at 81,920 env steps, the "
                           "CPU budget of benchmarks/results.py (the preset's own: 5e7 env steps; here num_envs 128)")
    assert ("Brax's own trainer (brax.training.agents.ppo.train, brax 0.14.2) at the same budget and settings: eval "
            "return IQM 500.0 [95% CI 490.0, 505.0] over 3 seeds (purerl/Brax 0.80;") in text
    assert "900 s of training for its seeds one after another" in text
    assert text.endswith("(benchmarks/results.py, docs/results/cells, CPU 2 cores, jax 0.9.2, 2026-12-07)")


def test_reaches_lines_from_cells_are_the_cell_files_and_the_readme_shows_them():
    """A preset whose reaches line names docs/results/cells holds what --from-cells writes from the files there,
    and the README's Presets tables list it under the results runner's table."""
    bench = benchmark("presets")
    runs = bench.cell_runs()
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for name in presets.names():
        reaches = presets.load(name).reaches
        if "docs/results/cells" not in reaches:
            continue
        assert reaches == bench.reaches_from_cells(runs[name]), name
        for r in runs[name]:
            assert f"| {name} on {r['env']} | " in readme, name
