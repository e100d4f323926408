#!/usr/bin/env bash
# Profile one step of the preprocessing chain benchmark with perf, the rest
# of the chain running unprofiled (perf starts disabled; bench/chain.ts
# enables it around the step through a control FIFO).
#
#   bash bench/profile-step.sh STEP FILE [record|stat] [perf options...]
#
# STEP is a step name of bench/chain.ts (qc, hvg, pca, ...). Examples:
#   bash bench/profile-step.sh pca bench/.data/synth_100k.h5ad record -o /tmp/pca.data
#   bash bench/profile-step.sh qc bench/.data/synth_100k.h5ad stat -e cycles:u,instructions:u
# then e.g. `perf report -i /tmp/pca.data --no-children --sort symbol`.
set -euo pipefail
cd "$(dirname "$0")/.."
step="${1:?usage: profile-step.sh STEP FILE [record|stat] [perf options]}"
file="${2:?usage: profile-step.sh STEP FILE [record|stat] [perf options]}"
mode="${3:-record}"
shift $(( $# < 3 ? $# : 3 ))
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
mkfifo "$dir/ctl" "$dir/ack"
AOOM_PERF_CTL="$dir/ctl" perf "$mode" -D -1 --control="fifo:$dir/ctl,$dir/ack" "$@" \
  node dist/bench/chain.js "$file" --perf-step "$step" > /dev/null
