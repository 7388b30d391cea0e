#!/usr/bin/env bash
# Fuzzes Herald's parsers with libFuzzer (Sources/HeraldFuzzing: envelope, time,
# configuration, mail, outbox). Builds herald-fuzz in release mode with
# -sanitize=fuzzer,address in .build-fuzz (the normal .build is left alone), then runs each
# target for FUZZ_SECONDS and prints runs, executions per second and coverage.
#
# Usage: scripts/fuzz.sh [target...]     (default: every target)
#   FUZZ_SECONDS  time per target (default 60)
#   FUZZ_ARGS     more libFuzzer flags, e.g. "-jobs=2 -workers=2" or "-use_value_profile=1"
#
# Release mode because the Swift standard library is not instrumented: at -Onone its generic
# code (string and collection algorithms) runs unspecialized inside the library and gives the
# fuzzer no coverage feedback; at -O it is specialized into Herald's instrumented code.
#
# The working corpus grows in var/fuzz/corpus/<target> across runs (the committed seeds in
# Tests/Fuzz/Corpus/<target> are read, never written); inputs that crash or break an
# invariant land in var/fuzz/artifacts/<target>/. Reproduce one without sanitizers with
#   HERALD_FUZZ_TARGET=<target> .build/debug/herald-fuzz var/fuzz/artifacts/<target>/crash-…
# Exit status 1 when any target found something.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
all=(envelope time configuration mail outbox oauth2)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
for target in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $target "* ]] || { echo "unknown fuzz target: $target (targets: ${all[*]})" >&2; exit 2; }
done

scratch=.build-fuzz
flags=(-c release --scratch-path "$scratch" -Xswiftc -sanitize=fuzzer,address -Xcc -DHERALD_LIBFUZZER)
swift build "${flags[@]}" --product herald-fuzz
binary="$(swift build "${flags[@]}" --show-bin-path)/herald-fuzz"

out=var/fuzz
status=0
results=()
for target in "${targets[@]}"; do
  corpus=$out/corpus/$target
  artifacts=$out/artifacts/$target
  mkdir -p "$corpus" "$artifacts"
  dictionary=$out/$target.dict
  cat "Tests/Fuzz/Dictionaries/$target.dict" Tests/Fuzz/Dictionaries/unicode.dict > "$dictionary"
  log=$out/$target.log
  echo "fuzzing $target for ${seconds}s (log: $log)"
  # SWIFT_BACKTRACE=enable=no: the Swift runtime's crash backtracer reads other threads'
  # stacks, which AddressSanitizer reports as an error of its own; libFuzzer prints the stack.
  # shellcheck disable=SC2086
  if SWIFT_BACKTRACE=enable=no HERALD_FUZZ_TARGET=$target HERALD_TEMPLATES_DIR=Templates \
    "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -dict="$dictionary" -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} "$corpus" "Tests/Fuzz/Corpus/$target" \
    >"$log" 2>&1; then
    found=""
  else
    status=1
    found=" FOUND: $(grep -m1 -E 'invariant broken|Fatal error|ERROR: (AddressSanitizer|libFuzzer)|SUMMARY' "$log" || echo "see $log")"
  fi
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  runs=$(grep -m1 '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  rate=$(grep -m1 '^stat::average_exec_per_sec' "$log" | awk '{print $2}' || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+\/[0-9]+[a-zA-Z]+).*/\1/p' <<<"$last")
  results+=("$(printf '%-14s %10s runs %8s exec/s   cov %-6s ft %-7s corpus %s%s' "$target" "${runs:-?}" "${rate:-?}" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}" "$found")")
done

echo
echo "fuzzing results (${seconds}s per target):"
printf '  %s\n' "${results[@]}"
if [ "$status" -ne 0 ]; then
  echo "inputs that crashed or broke an invariant are in $out/artifacts/ (libFuzzer's log beside them)" >&2
fi
exit "$status"
