#!/usr/bin/env bash
# Install and start what the test suite uses for real: Debian's Fashion-MNIST, headless Chromium, and a single-node
# Slurm cluster with accounting (scripts/slurm_cluster.sh).
# Needs root; without it, says which tests will skip, and why.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "[test-deps] not root: Debian packages cannot be installed; the Slurm and browser tests will skip (loudly) and Fashion-MNIST must be given with STUDY_FASHION_MNIST." >&2
  exit 0
fi
PKGS="dataset-fashion-mnist chromium"
if ! dpkg -s $PKGS >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
fi
bash scripts/slurm_cluster.sh
