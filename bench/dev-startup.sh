#!/usr/bin/env bash
# Times `make dev` on an already built tree: from the command until GET /health answers 200.
# Prints the seconds and how many worker builds ran meanwhile, then stops the dev server.
# Usage: bash bench/dev-startup.sh [runs=1] [port=8799] [changed]   (a port of its own, so it can run
# beside a `make dev` on 8787; `changed` touches src/lib.rs before each run, so exactly one build is
# timed). Run it under the build lock like any build: it may build, untimed, first.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-1}"
port="${2:-8799}"
changed="${3:-}"
timeout_s=300

# "Built" is the starting point, so bring the build up to date outside the timing.
make -s build > /dev/null

log=$(mktemp)
pid=
stop() {
  # setsid made make the leader of its own process group: wrangler and workerd are in it.
  if [ -n "$pid" ]; then
    kill -TERM -- "-$pid" 2> /dev/null || true
    for _ in $(seq 50); do kill -0 -- "-$pid" 2> /dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    pid=
  fi
}
trap 'stop; rm -f "$log"' EXIT

for run in $(seq "$runs"); do
  [ "$changed" = changed ] && touch src/lib.rs
  start=$(date +%s%N)
  setsid make dev DEV_PORT="$port" > "$log" 2>&1 &
  pid=$!
  until [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/health")" = 200 ]; do
    if ! kill -0 "$pid" 2> /dev/null; then cat "$log"; echo "make dev exited before /health answered" >&2; exit 1; fi
    if (( ($(date +%s%N) - start) / 1000000000 > timeout_s )); then cat "$log"; echo "no 200 from /health after ${timeout_s} s" >&2; exit 1; fi
    sleep 0.1
  done
  secs=$(( ($(date +%s%N) - start) / 1000000 ))
  # wrangler's [build] step logs "[custom build] Running:"; worker-build logs its esbuild step.
  custom=$(grep -c '\[custom build\] Running:' "$log" || true)
  compiled=$(grep -c 'Using custom Esbuild' "$log" || true)
  printf 'dev startup run %d: /health 200 after %d.%03d s (wrangler build steps: %d, worker builds: %d)\n' \
    "$run" $((secs / 1000)) $((secs % 1000)) "$custom" "$compiled"
  stop
done
