#!/usr/bin/env bash
# Separate environments for the libraries energylab is compared with, so their pins never touch
# the project's .venv. Idempotent; prints what could not be installed and carries on.
set -u
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}

if [ ! -x .venv-learnergy/bin/python ] || ! .venv-learnergy/bin/python -c "import learnergy" 2>/dev/null; then
  "$PYTHON" -m venv .venv-learnergy
  .venv-learnergy/bin/pip install -q "learnergy==2.0.2" || echo "learnergy 2.0.2 did not install"
fi

# Paysage 0.2.1 (2018) predates Python 3.11 and current numpy; try, and record the outcome.
if [ ! -f .paysage-status ]; then
  "$PYTHON" -m venv .venv-paysage
  if .venv-paysage/bin/pip install -q "paysage==0.2.1" > .paysage-install.log 2>&1; then
    echo "installed" > .paysage-status
  else
    echo "did not install on $("$PYTHON" --version): $(grep -m1 -iE 'error' .paysage-install.log | cut -c1-200)" > .paysage-status
  fi
fi

# Paysage's reference numbers use its pytorch backend, chosen in backends/config.json inside the
# package. Give the venv torch, switch the backend to pytorch on the cpu, and keep it only if a
# tiny CD-1 run works; otherwise fall back to the numpy ("python") backend. The status line
# records which backend the benchmark will time. Runs once per install (re-run: delete the status).
if grep -q '^installed$' .paysage-status 2>/dev/null; then
  PY=.venv-paysage/bin/python
  CONFIG=$("$PY" -c "import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec('paysage').origin), 'backends', 'config.json'))")
  if ! "$PY" -c "import torch" 2>/dev/null; then
    .venv-paysage/bin/pip install -q torch >> .paysage-install.log 2>&1 || echo "torch did not install in .venv-paysage" >&2
  fi
  echo '{"backend": "pytorch", "processor": "cpu"}' > "$CONFIG"
  if "$PY" - >> .paysage-install.log 2>&1 <<'SMOKE'
import numpy as np
import torch
from paysage import backends as be, batch, fit, layers, models, optimizers, schedules
from paysage.backends import read_config
assert read_config.BACKEND == "pytorch", read_config.BACKEND
x = (np.random.default_rng(0).random((256, 16)) < 0.3).astype(np.float32)
data = batch.Batch({"train": batch.InMemoryTable(be.float_tensor(x), 32)})
rbm = models.BoltzmannMachine([layers.BernoulliLayer(16), layers.BernoulliLayer(8)])
rbm.initialize(data, method="hinton")
sgd = fit.SGD(rbm, data)
sgd.monitor = None
sgd.train(optimizers.Gradient(stepsize=schedules.Constant(initial=0.1)), 1, mcsteps=1,
          method=fit.methods.cd, beta_std=0.0, verbose=False)
W = rbm.connections[0].weights.W()
assert isinstance(W, torch.Tensor) and bool(torch.isfinite(W).all())
SMOKE
  then
    echo "installed (backend pytorch/cpu, torch $("$PY" -c 'import torch; print(torch.__version__)'))" > .paysage-status
  else
    echo '{"backend": "python", "processor": "cpu"}' > "$CONFIG"
    echo "installed (backend python/cpu: the pytorch backend failed its CD-1 smoke test, see bench/.paysage-install.log)" > .paysage-status
  fi
fi
