#!/usr/bin/env bash
# The validity measurements of README "Is the yardstick right?" on the embedded model, in one
# go, into results/validity.db (about 75 minutes on 2 CPU cores; run it alone). Each step
# prints its wall time; tabulate with:
#   python benchmarks/validity_report.py --db results/validity.db --compare lora full-ft
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DB=${DB:-results/validity.db}
step() {
    local name=$1; shift
    local started=$SECONDS
    echo "== $name: pytest $*"
    "$PY" -m pytest -q -p no:randomly --results="$DB" --budget=quick "$@" | tail -n 40
    echo "== $name: $((SECONDS - started)) s"
}
# 1. Forgetting in chat and raw mode, task accuracy, three seeds (seed spread vs CIs).
step seeds suites/test_accuracy.py suites/test_forgetting.py \
    --approach=zero-shot,few-shot,lora,full-ft --seeds=0,1,2
# 2. The forgetting control: random replies at a high learning rate must break the probes.
step damage suites/test_forgetting.py suites/test_accuracy.py --approach=control-damage
# 3. Does the probe gain come from the reply format? Probes phrased as sentences (the
#    trained candidates come from step 1's cache).
step sentence suites/test_forgetting.py --approach=lora,full-ft \
    --probe-answers=sentence --results="${DB%.db}-sentence.db"
# 4. Fine-tuning on long replies (prefs) instead of one-word labels.
step prefs suites/test_forgetting.py --task=prefs --approach=full-ft
# 5. The other controls: chance accuracy, a known latency, an overfit verdict (the last at the
#    smoke budget: a few examples memorised is the point).
step random suites/test_accuracy.py --approach=control-random
step sleep suites/test_latency.py --approach=zero-shot,control-sleep \
    --set control-sleep.sleep_ms=1000
step overfit suites/test_overfitting.py --approach=control-overfit --budget=smoke -k loss_curves
# 6. Few-shot sensitivity to k and the draw, and contextual calibration (Zhao et al., 2021).
for k in 2 8; do
    step "few-shot k=$k" suites/test_accuracy.py --approach=few-shot --set few-shot.k=$k \
        --seeds=0,1,2
done
step calibrated suites/test_accuracy.py --approach=few-shot --set few-shot.calibrate=true \
    --seeds=0,1,2
# 7. Full fine-tuning at a learning rate that brings its task accuracy down to LoRA's
#    (Biderman et al. compare forgetting at equal learning).
step matched suites/test_accuracy.py suites/test_forgetting.py --approach=full-ft \
    --set full-ft.learning_rate=1e-5 --seeds=0,1,2
