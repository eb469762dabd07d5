#!/usr/bin/env bash
# Fuzzes the decoder, validator, compile check and import (fuzz/fuzz_targets/check_inputs.rs)
# for SECONDS (default 600), seeding the corpus from tests/validation/cases.json and the
# shared real-world profiles. Needs the nightly toolchain and cargo-fuzz
# (cargo install cargo-fuzz). Prints libFuzzer's final statistics; a crash leaves its input
# in fuzz/artifacts/check_inputs/ and makes this script fail.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
corpus=fuzz/corpus/check_inputs
mkdir -p "$corpus"
n=$(jq length tests/validation/cases.json)
for ((i = 0; i < n; i++)); do
  name=$(jq -r ".[$i].name" tests/validation/cases.json)
  if [[ $(jq -r ".[$i].raw" tests/validation/cases.json) != null ]]; then
    jq -j ".[$i].raw" tests/validation/cases.json >"$corpus/$name"
  else
    jq -c ".[$i].input" tests/validation/cases.json >"$corpus/$name"
  fi
done
cp ../shared/profiles/*.json "$corpus/" 2>/dev/null || true
cd fuzz
cargo +nightly fuzz run -s none check_inputs -- \
  -max_total_time="$seconds" -max_len=65536 -timeout=30 -rss_limit_mb=4096 -print_final_stats=1
