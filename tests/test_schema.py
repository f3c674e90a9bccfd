"""The config schema (purerl.config.schema): every field of every algorithm parses from the command line to the
value its run directory records, refuses a Python value of another type naming the field, and a choice field
refuses an unknown value listing its choices; and the one checker of counts and switches (purerl.arguments)."""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

from purerl import algorithms, cli, networks, ppo, reinforce
from purerl.arguments import check_count, check_flag, parse_count, parse_switch
from purerl.config import ACTIVATION_NAMES, TORSOS, apply_overrides, config_from_dict, config_to_dict, schema

ALL = [a.module for a in algorithms.ALGORITHMS]   # every registered algorithm


def _other(s):
    """A value of the field's type other than its default."""
    if s.choices:
        return next(c for c in s.choices if c != s.default)
    return {"bool": lambda: not s.default, "int": lambda: (s.default or 0) + 3,
            "float": lambda: 0.375 if s.default is None else s.default * 0.5 + 0.125,
            "str": lambda: "spring" if s.default is None else s.default + "-x", "ints": lambda: (3, 5)}[s.kind]()


def _wrong(s):
    """A Python value of another type than the field's."""
    return {"bool": "true", "int": 2.5, "float": "0.5", "str": 3, "ints": "64,64"}[s.kind]


@pytest.mark.parametrize("algo", ALL, ids=lambda m: m.__name__.split(".")[-1])
def test_every_field_round_trips_from_its_set_text_to_the_value_written(algo):
    """For every field, the default and another value, as the schema writes them for --set and (but for
    strings) as Python's repr that --help shows: --set gives the value config_to_dict writes, type included."""
    base = algo.Config()
    for s in schema(algo.Config).values():
        values = [s.default, _other(s)] + [None] * s.optional
        for v in values:
            expected = json.dumps(config_to_dict(base.replace(**{s.name: v}))[s.name])
            for text in {s.text(v), repr(v) if not isinstance(v, str) else v}:
                got = config_to_dict(apply_overrides(base, [f"{s.name}={text}"]))[s.name]
                assert json.dumps(got) == expected, (s.name, text, got, expected)


@pytest.mark.parametrize("algo", ALL, ids=lambda m: m.__name__.split(".")[-1])
def test_every_field_refuses_a_python_value_of_another_type_naming_it(algo):
    for s in schema(algo.Config).values():
        with pytest.raises(TypeError, match=f"config field `{s.name}` must be "):
            algo.Config(**{s.name: _wrong(s)}).validate()
        if not s.optional:
            with pytest.raises(TypeError, match=f"config field `{s.name}` must be .*, got None"):
                algo.Config(**{s.name: None}).validate()


def test_the_choice_fields_are_declared_and_refuse_an_unknown_value_listing_the_choices():
    seen = set()
    for algo in ALL:
        for s in schema(algo.Config).values():
            if not s.choices:
                continue
            seen.add(s.name)
            listing = ", ".join(repr(c) for c in s.choices)
            for make in (lambda: algo.Config(**{s.name: "zzz"}).validate(),
                         lambda: apply_overrides(algo.Config(), [f"{s.name}=zzz"])):
                with pytest.raises(ValueError, match=f"config field `{s.name}` = 'zzz' is invalid: use one of "
                                                     f"{re.escape(listing)}$"):
                    make()
            assert all(s.value(c) == c for c in s.choices)
            assert s.type_text == "one of " + ", ".join(s.choices)
    assert seen == {"activation", "torso", "action_transform", "optimizer", "td_loss", "baseline",
                    "exploration_noise"}
    # the names the schema accepts are the ones the networks implement; a near miss is named
    assert ACTIVATION_NAMES == tuple(networks.ACTIVATIONS) and schema(ppo.Config)["torso"].choices == TORSOS
    with pytest.raises(ValueError, match=r"\(did you mean 'relu'\?\)"):
        ppo.Config(activation="rellu").validate()


def test_set_reads_the_declared_type_not_the_defaults():
    """An optional int (unroll, default None) takes an int; a string choice may be "none" (REINFORCE's baseline);
    an optional float takes a number; none unsets an optional field and is refused for the others."""
    cfg = apply_overrides(ppo.Config(), ["unroll=8", "target_kl=0.02", "env_backend=mjx", "total_timesteps=1e6",
                                         "hidden_sizes=64,", "anneal_lr=YES", "clip_value=off"])
    assert (cfg.unroll, cfg.target_kl, cfg.env_backend, cfg.total_timesteps) == (8, 0.02, "mjx", 1_000_000)
    assert type(cfg.unroll) is int and type(cfg.total_timesteps) is int
    assert cfg.hidden_sizes == (64,) and cfg.anneal_lr is True and cfg.clip_value is False
    assert apply_overrides(reinforce.Config(), ["baseline=none"]).validate().baseline == "none"
    assert apply_overrides(ppo.Config(unroll=4), ["unroll=None"]).unroll is None
    for item, says in (("num_envs=none", "config field `num_envs` cannot be None: give an integer"),
                       ("num_envs=2.5", "config field `num_envs` expects a whole number such as 100000 or 1e5, "
                                        "got '2.5'"),
                       ("gamma=high", "config field `gamma` expects a number such as 0.99 or 3e-4, got 'high'"),
                       ("learning_rate=inf", "config field `learning_rate` = inf is not finite"),
                       ("hidden_sizes=64,,64", "config field `hidden_sizes` expects comma-separated values"),
                       ("anneal_lr=maybe", "config field `anneal_lr` is a switch: give one of true/false"),
                       ("learning_rat=1e-3", r"unknown config field\(s\) learning_rat for purerl.ppo.Config "
                                             r"\(did you mean learning_rate\?\)")):
        with pytest.raises(ValueError, match="--set: " + says):
            apply_overrides(ppo.Config(), [item])


def test_a_config_file_value_of_the_wrong_type_is_refused_naming_the_file_and_the_field():
    with pytest.raises(TypeError, match=r"preset p: config field `num_envs` must be a whole number \(an int\), got "
                                        r"the string '8'"):
        config_from_dict(ppo.Config, {"num_envs": "8"}, source="preset p")
    with pytest.raises(ValueError, match="preset p: config field `torso` = 'CNN' is invalid"):
        config_from_dict(ppo.Config, {"torso": "CNN"}, source="preset p")
    cfg = config_from_dict(ppo.Config, {"hidden_sizes": [32, 32], "gamma": 1, "target_kl": None})
    assert cfg.hidden_sizes == (32, 32) and cfg.gamma == 1.0 and type(cfg.gamma) is float


def test_help_and_docs_show_each_fields_type_from_the_schema(capsys):
    spec = importlib.util.spec_from_file_location("docs_hooks", Path(__file__).parents[1] / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    for algo in algorithms.NAMES:
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(["train", algo, "--help"])
        text = capsys.readouterr().out
        table = hooks.config_table(algo)
        for s in schema(algorithms.module(algo).Config).values():
            kind = "static" if s.static else "leaf (vmappable)"
            assert f"  [{s.type_text}{'; static' * s.static}]" in text, (algo, s.name)
            assert any(line.startswith(f"| {hooks.code_cell(s.name)} |") and f"| {hooks.cell(s.type_text)}; {kind} |"
                       in line for line in table.splitlines()) or s.name in hooks.refused_fields(
                           algorithms.module(algo).Config), (algo, s.name)


# --- the one checker of counts and switches ----------------------------------------------------------------------

@pytest.mark.parametrize("args, kwargs, error, says", [
    ((0, "seeds"), {}, ValueError, "^`seeds` must be at least 1, got 0$"),
    ((0, "seeds"), {"where": "sweep"}, ValueError, "^sweep: `seeds` must be at least 1, got 0$"),
    ((1, "--points", 2), {}, ValueError, "^--points must be at least 2, got 1$"),
    ((-1, "checkpoint_every", 0), {"note": " (0 saves at the end only)"}, ValueError,
     r"^`checkpoint_every` must be at least 0, got -1 \(0 saves at the end only\)$"),
    ((2.0, "seeds"), {}, TypeError, r"^`seeds` must be a whole number \(an int\) of at least 1, got 2.0 \(float\): "
                                    r"write 2$"),
    ((True, "seeds"), {}, TypeError, r"^`seeds` must be a whole number \(an int\) of at least 1, got True \(bool\)$"),
    ((np.bool_(True), "n", None), {}, TypeError, r"^`n` must be a whole number \(an int\), got "),
    (("3", "n"), {}, TypeError, r"got the string '3'$"),
])
def test_check_count_names_the_argument_the_value_and_the_bound(args, kwargs, error, says):
    with pytest.raises(error, match=says):
        check_count(*args, **kwargs)


def test_check_count_returns_a_python_int():
    for value, minimum in ((np.int64(3), 1), (0, 0), (-5, None), (2**70, 1)):
        got = check_count(value, "n", minimum)
        assert got == int(value) and type(got) is int


def test_command_line_counts_and_switches_parse_with_the_same_checker():
    assert [parse_count(t) for t in ("100000", "1e5", "1_000_000", " 7 ", "2.0")] == [100000, 100000, 1000000, 7, 2]
    assert parse_count("12345678901234567891") == 12345678901234567891      # exact, not through a float
    assert parse_count("-3", minimum=None) == -3
    for text, says in (("1.5", "--seeds expects a whole number such as 100000 or 1e5, got '1.5'"),
                       ("inf", "--seeds expects a whole number"), ("1e5x", "--seeds expects a whole number"),
                       ("0", "--seeds must be at least 1, got 0")):
        with pytest.raises(ValueError, match=f"^{says}"):
            parse_count(text, "--seeds")
    assert [parse_switch(t) for t in ("yes", "ON", "1", " True ", "false", "No", "off", "0")] == [True] * 4 + [False] * 4
    with pytest.raises(ValueError, match="^`x` is a switch: give one of true/false, yes/no, on/off, 1/0 .any case., "
                                         "got 'maybe'$"):
        parse_switch("maybe", "x")
    assert check_flag(np.bool_(False), "x") is False
    with pytest.raises(TypeError, match="^`deterministic` must be True or False, got the string 'yes'$"):
        check_flag("yes", "deterministic")
    # every count option of the command line is typed by it: 1e1 is 10, a count below its minimum is argparse's
    # one-line error naming the option
    args = cli.build_parser().parse_args(["train", "ppo", "--seeds", "1e1", "--eval-episodes", "2_0"])
    assert (args.seeds, args.eval_episodes) == (10, 20)
    assert cli.build_parser().parse_args(["eval", "d", "--episodes", "3e1"]).episodes == 30
    assert cli.build_parser().parse_args(["bench", "ppo", "--num-envs", "4,1e2"]).num_envs == [4, 100]


@pytest.mark.parametrize("argv, says", [
    (["train", "ppo", "--seeds", "0"], "argument --seeds: must be at least 1, got 0"),
    (["train", "ppo", "--checkpoint-every", "-1"], "argument --checkpoint-every: must be at least 0, got -1"),
    (["eval", "d", "--episodes", "0"], "argument --episodes: must be at least 1, got 0"),
    (["bench", "ppo", "--repeats", "1.5"], "argument --repeats: expects a whole number such as 100000 or 1e5"),
    (["bench", "ppo", "--seeds", "1,0"], "argument --seeds: must be at least 1, got 0"),
    (["render", "d", "--max-steps", "0"], "argument --max-steps: must be at least 1, got 0"),
])
def test_a_count_option_below_its_minimum_is_one_line(argv, says, capsys):
    with pytest.raises(SystemExit) as e:
        cli.build_parser().parse_args(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and says in err, err


@pytest.mark.parametrize("kwargs, error, says", [
    ({"seeds": 0}, ValueError, "^`seeds` must be at least 1, got 0$"),
    ({"seeds": 2.0}, TypeError, r"^`seeds` must be a whole number \(an int\) of at least 1, got 2.0 \(float\): write 2"),
    ({"checkpoint_every": -1}, ValueError, r"^`checkpoint_every` must be at least 0, got -1 \(0 saves at the end only\)"),
    ({"eval_episodes": True}, TypeError, "^`eval_episodes` must be a whole number"),
    ({"seed": "0"}, TypeError, "^`seed` must be a whole number"),
])
def test_the_runner_checks_its_counts_with_the_same_checker_before_writing(kwargs, error, says, tmp_path):
    from purerl.run import runner

    with pytest.raises(error, match=says):
        runner.train("ppo", ppo.Config(), tmp_path / "run", **kwargs)
    assert not (tmp_path / "run").exists()
