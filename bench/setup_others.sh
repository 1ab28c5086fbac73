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
