"""Bad input is refused in plain Python, before anything is traced, with an error that names the field, the
value and the fix: wrong types, non-finite numbers, arrays without vmap, traced static fields, fields that do
not apply, and relations between fields."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import a2c, a3c, algorithms, ddpg, ppo, reinforce, sac
from purerl.core.loop import env_steps

ALL = [a.module for a in algorithms.ALGORITHMS]   # every registered algorithm


@pytest.mark.parametrize("value", ["false", "true", 1, 0, None])
def test_a_switch_takes_only_true_or_false(value):
    with pytest.raises(TypeError, match=r"`anneal_lr`.*True or False"):
        ppo.Config(anneal_lr=value).validate()


@pytest.mark.parametrize("value", ["3e-4", True, [1e-3], {"lr": 1e-3}])
def test_a_number_takes_only_a_real_number(value):
    with pytest.raises(TypeError, match="`learning_rate`"):
        ppo.Config(learning_rate=value).validate()


@pytest.mark.parametrize("field,value", [("learning_rate", float("inf")), ("gamma", float("nan")),
                                         ("max_grad_norm", float("inf")), ("ent_coef", -float("inf"))])
def test_numbers_must_be_finite(field, value):
    with pytest.raises(ValueError, match=f"`{field}`.*finite"):
        ppo.Config(**{field: value}).validate()


@pytest.mark.parametrize("field,value", [("total_timesteps", 1e6), ("num_envs", 4.0), ("num_envs", True),
                                         ("num_steps", "128"), ("hidden_sizes", (64.0, 64)),
                                         ("hidden_sizes", "64,64")])
def test_an_integer_field_takes_only_integers(field, value):
    with pytest.raises(TypeError, match=f"`{field}`"):
        ppo.Config(**{field: value}).validate()


def test_numpy_numbers_and_lists_are_accepted_as_what_they_hold():
    cfg = ppo.Config(num_envs=np.int64(8), num_steps=np.int32(64), learning_rate=np.float32(1e-3),
                     anneal_lr=np.bool_(False), hidden_sizes=[32, np.int64(32)]).validate()
    assert type(cfg.num_envs) is int and cfg.num_envs == 8 and type(cfg.num_steps) is int
    assert type(cfg.anneal_lr) is bool and cfg.anneal_lr is False
    assert cfg.hidden_sizes == (32, 32) and all(type(h) is int for h in cfg.hidden_sizes)
    assert float(cfg.learning_rate) == pytest.approx(1e-3)
    hash(cfg.hidden_sizes)  # static fields stay hashable


def test_a_string_field_takes_only_strings():
    with pytest.raises(TypeError, match="`activation`"):
        ppo.Config(activation=3).validate()
    with pytest.raises(TypeError, match="`env`"):
        ppo.Config(env=None).validate()


def test_an_array_for_a_leaf_without_vmap_says_how_to_sweep():
    with pytest.raises(ValueError, match=r"`learning_rate`.*shape \(2,\).*vmap"):
        ppo.Config(learning_rate=jnp.array([1e-3, 3e-4])).validate()
    ppo.Config(learning_rate=jnp.asarray(1e-3)).validate()          # one value in a 0-d array is fine


@pytest.mark.parametrize("field,values", [("num_envs", [4, 8]), ("anneal_lr", [True, False])])
def test_vmapping_a_static_field_says_it_is_static(field, values):
    cfg = ppo.Config(env="CartPole-v1", num_steps=32, total_timesteps=4 * 32 * 2)

    def run(v, key):
        return ppo.make_train(cfg.replace(**{field: v}))(key)

    with pytest.raises(ValueError, match=f"`{field}` is static.*loop over"):
        jax.vmap(run)(jnp.array(values), jax.random.split(jax.random.key(0), 2))


@pytest.mark.parametrize("algo", ALL, ids=lambda m: m.__name__)
def test_every_algorithm_checks_types_the_same_way(algo):
    with pytest.raises(TypeError, match="`gamma`"):
        algo.Config(gamma="0.99").validate()
    with pytest.raises(TypeError, match="`total_timesteps`"):
        algo.Config(total_timesteps=True).validate()
    with pytest.raises(ValueError, match="`gamma`.*finite"):
        algo.Config(gamma=float("nan")).validate()


def test_a_field_is_checked_before_relations_that_use_it():
    with pytest.raises(ValueError, match=r"`num_workers` = 0"):    # not a division by zero in the batch size
        a3c.Config(num_workers=0).validate()


def test_replay_buffer_smaller_than_a_batch_is_refused():
    with pytest.raises(ValueError, match=r"`buffer_size` = 10.*batch_size = 32"):
        sac.Config(buffer_size=10, batch_size=32).validate()


@pytest.mark.parametrize("make", [
    lambda: ppo.Config(clip_value=False, vf_clip_eps=0.3),
    lambda: sac.Config(autotune_alpha=False, alpha_lr=1e-4),
    lambda: sac.Config(autotune_alpha=False, target_entropy=-2.0),
    lambda: ddpg.Config(exploration_noise="gaussian", ou_theta=0.3),
    lambda: reinforce.Config(baseline="none", baseline_decay=0.5),
    lambda: reinforce.Config(baseline="mean", vf_coef=1.0),
], ids=["vf_clip_eps", "alpha_lr", "target_entropy", "ou_theta", "baseline_decay", "vf_coef"])
def test_a_field_that_does_not_apply_is_an_error(make):
    with pytest.raises(ValueError, match="does not apply"):
        make().validate()


@pytest.mark.parametrize("fields,name", [({"env_backend": "positional"}, "env_backend"),
                                         ({"episode_length": 200}, "episode_length"),
                                         ({"action_transform": "rescale"}, "action_transform"),
                                         ({"state_dependent_std": True}, "state_dependent_std")])
def test_a_field_that_does_not_apply_to_the_env_is_an_error(fields, name):
    """CartPole is a gymnax env (its own time limit, no physics backend) with discrete actions."""
    with pytest.raises(ValueError, match=f"`{name}`.*does not apply.*CartPole-v1"):
        ppo.make(ppo.Config(env="CartPole-v1", **fields))


def test_env_steps_metric_does_not_wrap_past_two_to_the_31():
    """Metrics count env steps as float32 in the compiled run (exact to 2^24, then to 7 digits), never as an
    int32 that turns negative after 2^31 steps."""
    steps = jax.jit(env_steps)(jnp.asarray(2 ** 30, jnp.int32), 16)
    assert float(steps) == pytest.approx(2.0 ** 34, rel=1e-6)
    assert int(jax.jit(env_steps)(jnp.asarray(1000, jnp.int32), 512)) == 512_000


# --- renamed fields: configs written before a rename still load --------------------------------------------

def test_a_renamed_field_loads_under_its_new_name_with_a_warning(tmp_path):
    import json

    from purerl import presets
    from purerl.config import config_from_dict

    with pytest.warns(FutureWarning, match=r"run/config.json: config field `scale_reward` was renamed "
                                           r"`normalize_reward`"):
        cfg = config_from_dict(ppo.Config, {"scale_reward": True, "adam_eps": 1e-4}, source="run/config.json")
    assert cfg.normalize_reward is True and cfg.opt_eps == 1e-4
    # a --config file (or an old run's config.json) goes through the same path
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"algo": "a2c", "config": {"scale_reward": True}}))
    with pytest.warns(FutureWarning, match="`normalize_reward`"):
        assert presets.load_file(old).apply(a2c.Config).normalize_reward is True


def test_a_renamed_field_given_under_both_names_is_an_error():
    from purerl.config import config_from_dict

    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="`normalize_reward` is given twice"):
        config_from_dict(ppo.Config, {"normalize_reward": False, "scale_reward": True})


def test_set_accepts_a_renamed_field_with_a_warning():
    from purerl.config import apply_overrides

    with pytest.warns(FutureWarning, match="--set: config field `adam_eps` was renamed `opt_eps`"):
        assert apply_overrides(ppo.Config(), ["adam_eps=1e-4"]).opt_eps == 1e-4


def test_an_old_name_that_the_algorithm_never_had_is_still_unknown():
    from purerl.config import config_from_dict

    # SAC has neither scale_reward nor normalize_reward: no rename applies, the field is unknown
    with pytest.raises(ValueError, match="unknown config field.*scale_reward"):
        config_from_dict(sac.Config, {"scale_reward": True})
