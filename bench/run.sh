#!/usr/bin/env bash
# `make bench`: build the images, time the stack's cold start, start the stack
# with what the scenarios need, run bench/run.py in the bench container on its
# network, and remove the stack. The report lands in bench-results/.
#
#   BENCH_QUICK=1     every scenario briefly (the smoke test in `make test`)
#   BENCH_PROJECT     the compose project name (default: <folder>-bench)
#   BENCH_SCENARIOS   only these scenarios, e.g. 2,4 (to try a change quickly)
#   BENCH_PROFILE=1   also sample Gunicorn with py-spy on the page, both sides (profile-*.txt)
#   BENCH_COLD_ROUNDS how many cold starts to time (default: 3, quick: 1)
#   BENCH_RESULTS     where the report goes, inside the project (default: bench-results)
set -o errexit -o nounset -o pipefail
cd "$(dirname "$0")/.."

project=${BENCH_PROJECT:-$(basename "$PWD")-bench}
quick=${BENCH_QUICK:-0}
# The images are tagged with the project name (see bench/compose.yml).
export BENCH_IMAGE_TAG=$project
# nginx on a random local port: the load generators reach it on the compose
# network, and a random port never collides with a stack already running.
compose=(env HTTP_PORT=127.0.0.1:0 docker compose --project-name "$project"
  --file docker-compose.yml --file bench/compose.yml)

# Compose's progress lines, shown only when something fails.
log=$(mktemp)
down() { "${compose[@]}" --profile bench down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1; }
trap 'echo "==> removing the bench stack"; down; rm -f "$log"' EXIT

echo "==> building images"
"${compose[@]}" --profile bench build --quiet

# Scenario 8, timed here because it is Compose itself that is timed: from
# `docker compose up` with built images and no volumes (a first start: new
# secrets, an empty database to initialise and migrate) to every service healthy.
if [[ $quick == 1 ]]; then cold_rounds=1; else cold_rounds=3; fi
# A run of other scenarios alone (BENCH_SCENARIOS=2,4) times no cold start.
if [[ -n ${BENCH_SCENARIOS:-} && ,${BENCH_SCENARIOS// /}, != *,8,* ]]; then cold_rounds=0; fi
cold_rounds=${BENCH_COLD_ROUNDS:-$cold_rounds}
down
cold_start_seconds=()
for round in $(seq "$cold_rounds"); do
  down
  start=$(date +%s.%N)
  "${compose[@]}" up --detach --wait --quiet-pull >/dev/null 2>"$log" || { cat "$log"; exit 1; }
  seconds=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }")
  echo "==> cold start $round/$cold_rounds: $seconds s"
  cold_start_seconds+=("$seconds")
done

echo "==> starting what the scenarios need (asgi with two replicas, one worker, the common-default variant)"
"${compose[@]}" --profile bench up --detach --wait --quiet-pull --scale asgi=2 \
  nginx nginx-default worker >/dev/null 2>"$log" || { cat "$log"; exit 1; }
# Scenario 10's quiet variant, scenario 12's web without session copies and
# scenario 13's Daphne with production's message budget: created, not
# running; bench/run.py starts each for its scenario alone.
# --no-deps: what they depend on is up already, and Compose would otherwise
# bring asgi back to one replica.
"${compose[@]}" --profile bench up --no-start --no-deps --quiet-pull web-quiet nginx-quiet \
  web-nocopy web-nopool asgi-flood >/dev/null 2>"$log" || { cat "$log"; exit 1; }

export BENCH_RESULTS=${BENCH_RESULTS:-bench-results}
mkdir -p "$BENCH_RESULTS"
echo "==> running the scenarios"
COLD_START_SECONDS="${cold_start_seconds[*]}" BENCH_QUICK="$quick" \
  "${compose[@]}" --profile bench run --rm --no-deps bench python run.py
