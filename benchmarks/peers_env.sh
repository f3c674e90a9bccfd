#!/usr/bin/env bash
# The peers that benchmarks/peers.py times purerl against, made with pinned versions:
#
#     bash benchmarks/peers_env.sh                      # both parts below
#     bash benchmarks/peers_env.sh --venv-only          # the rejax environment only
#     bash benchmarks/peers_env.sh --pjr-only [URL]     # PureJaxRL only (URL: where to clone it from)
#
# 1. .peers-venv (PEERS_VENV): a virtual environment with rejax 0.1.3 and the gymnax it was written for
#    (0.0.9, the five-value step API; purerl's own environment has gymnax 1.x, so rejax cannot share it), on
#    the jax that purerl's environment runs (PEERS_JAX, default 0.9.2: the comparison is fair only on the same
#    jax). peers.py runs rejax and PureJaxRL with .peers-venv/bin/python.
# 2. .peers/purejaxrl (PEERS_DIR/purejaxrl): PureJaxRL, a script rather than a package, cloned with git from
#    PUREJAXRL_URL (default https://github.com/luchris429/purejaxrl; a local clone or mirror works too) into
#    PEERS_DIR/purejaxrl-src, checked out at PUREJAXRL_COMMIT (pinned below) and prepared by
#    `python benchmarks/peers.py --prepare-pjr`: its ppo.py, dqn.py and wrappers.py copied, navix's and wandb's
#    imports commented out, the brax imports made optional, dqn.py's jax.tree_map (gone since jax 0.6) written
#    jax.tree.map, the commit recorded in SOURCE.txt. Then
#    `python benchmarks/peers.py --pjr .peers/purejaxrl` times it live.
#
# Environment variables: PEERS_JAX; PEERS_CUDA (cuda12 or cuda13 on an NVIDIA GPU: jax[PEERS_CUDA], as
# purerl's extra of that name installs; empty, the default, for the CPU build); PEERS_VENV and PEERS_DIR
# (relative to the repository root; defaults .peers-venv, .peers); PEERS_PYTHON (the interpreter the venv is
# made from, default python3); PUREJAXRL_URL (or the URL argument); PUREJAXRL_COMMIT. Both parts can be run
# again: the venv is reused if it exists, the clone fetched and checked out again.
set -euo pipefail

PEERS_JAX=${PEERS_JAX:-0.9.2}
PEERS_CUDA=${PEERS_CUDA:-}
PEERS_VENV=${PEERS_VENV:-.peers-venv}
PEERS_DIR=${PEERS_DIR:-.peers}
PEERS_PYTHON=${PEERS_PYTHON:-python3}
PUREJAXRL_URL=${PUREJAXRL_URL:-https://github.com/luchris429/purejaxrl}
# PureJaxRL's main branch as of 2024-09-09 ("Update README.md"), the commit docs/results/peers-cpu.json names
PUREJAXRL_COMMIT=${PUREJAXRL_COMMIT:-31756b197773a52db763fdbe6d635e4b46522a73}
# rejax 0.1.3 and the libraries it and PureJaxRL import, at the newest versions that pip chose for jax 0.9.2 on
# 2026-12-05 (their own dependencies are left to pip); flashbax for PureJaxRL's DQN, the version purerl uses
PEERS_PACKAGES=("gymnax==0.0.9" "rejax==0.1.3" "flax==0.12.6" "optax==0.2.8" "distrax==0.1.9" "chex==0.1.92" "flashbax==0.1.3")

usage() {
    echo "usage: bash benchmarks/peers_env.sh [--venv-only | --pjr-only] [PUREJAXRL_URL]" >&2
    exit 2
}

venv=1 pjr=1
while [ $# -gt 0 ]; do
    case "$1" in
        --venv-only) pjr=0 ;;
        --pjr-only) venv=0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        -*) usage ;;
        *) PUREJAXRL_URL=$1 ;;
    esac
    shift
done
if [ -e "$PUREJAXRL_URL" ]; then PUREJAXRL_URL=$(cd "$PUREJAXRL_URL" && pwd); fi   # a local path, absolute
cd "$(dirname "$0")/.."   # the repository root: the relative paths above are the repository's

if [ "$venv" = 1 ]; then
    if [ ! -x "$PEERS_VENV/bin/python" ]; then
        "$PEERS_PYTHON" -m venv "$PEERS_VENV"
    fi
    "$PEERS_VENV/bin/python" -m pip install -q --upgrade pip
    jax="jax==$PEERS_JAX"
    case "$PEERS_CUDA" in
        "") ;;
        cuda12|cuda13) jax="jax[$PEERS_CUDA]==$PEERS_JAX" ;;
        *) echo "peers_env.sh: PEERS_CUDA must be cuda12, cuda13 or empty, got '$PEERS_CUDA'" >&2; exit 2 ;;
    esac
    "$PEERS_VENV/bin/python" -m pip install -q "$jax" "jaxlib==$PEERS_JAX" "${PEERS_PACKAGES[@]}"
    "$PEERS_VENV/bin/python" -c "import jax, gymnax, rejax; from importlib.metadata import version as v; \
print('$PEERS_VENV: jax', jax.__version__, 'gymnax', v('gymnax'), 'rejax', v('rejax'))"
fi

if [ "$pjr" = 1 ]; then
    src=$PEERS_DIR/purejaxrl-src
    mkdir -p "$PEERS_DIR"
    if [ ! -d "$src/.git" ]; then
        rm -rf "$src"
        git clone -q "$PUREJAXRL_URL" "$src"
    else
        git -C "$src" fetch -q "$PUREJAXRL_URL" \
            || echo "peers_env.sh: could not fetch $PUREJAXRL_URL; using $src as it is" >&2
    fi
    if ! git -C "$src" cat-file -e "$PUREJAXRL_COMMIT^{commit}" 2>/dev/null; then
        echo "peers_env.sh: PureJaxRL commit $PUREJAXRL_COMMIT is not in $PUREJAXRL_URL" >&2
        exit 1
    fi
    git -C "$src" -c advice.detachedHead=false checkout -q "$PUREJAXRL_COMMIT"
    python=$PEERS_PYTHON
    [ -x "$PEERS_VENV/bin/python" ] && python=$PEERS_VENV/bin/python
    "$python" benchmarks/peers.py --prepare-pjr "$PEERS_DIR/purejaxrl" "$src"
fi
