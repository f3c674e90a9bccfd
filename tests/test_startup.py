"""What a run imports before it starts: gymnax's plotting modules are imported on first use, not with gymnax."""
import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_gymnax_env_without_its_plotting_modules_which_still_work_when_used():
    out = _run("""
        import sys, types
        import purerl.envs
        env = purerl.envs.make("CartPole-v1", 2)
        print("after make:", sorted(m for m in ("seaborn", "matplotlib.pyplot", "scipy.stats", "pandas")
                                    if m in sys.modules))
        # gymnax's own renderers hold stand-ins that import the real module on first use
        import gymnax.environments.misc.pong as pong
        palette = pong.sns.color_palette("cubehelix", 3)
        import seaborn
        print("real seaborn:", type(seaborn) is types.ModuleType, palette == seaborn.color_palette("cubehelix", 3))
        import matplotlib.pyplot as plt
        print("real pyplot:", type(plt) is types.ModuleType, pong.plt.subplots is plt.subplots)
    """)
    assert "after make: []" in out, out
    assert "real seaborn: True True" in out, out
    assert "real pyplot: True True" in out, out


def test_gymnax_imported_first_elsewhere_is_used_as_it_is():
    out = _run("""
        import sys
        import gymnax  # the user's own import: every module gymnax imports, as gymnax imports them
        import purerl.envs
        from purerl.envs.suites import import_gymnax
        print(import_gymnax() is gymnax, "seaborn" in sys.modules, purerl.envs.make("Pendulum-v1", 1).action_dim)
    """)
    assert out.split() == ["True", "True", "1"], out
