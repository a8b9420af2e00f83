#!/usr/bin/env bash
# HTTP server speed: wrk -t2 -c64 -d10s on GET /health with keep-alive, Zebra and llama.cpp's
# llama-server on the same model in the same run, one after the other, 3 rounds alternating.
# Needs: wrk (Debian package), .build/release/zebra, .build-llamacpp/bin/llama-server.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${MODEL:-models/gemma-3-270m-Q4_K_M.gguf}"
ROUNDS="${ROUNDS:-3}"
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)"; exit 1; }
wait_up() { for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return 0; sleep 0.2; done; return 1; }
run_wrk() { wrk -t2 -c64 -d10s --latency "http://127.0.0.1:$1/health" | awk '
  /Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +90%/ {p90=$2} /^ +99%/ {p99=$2}
  END {printf "%s %s %s %s\n", rps, p50, p90, p99}'; }
printf "%-12s %5s %12s %8s %8s %8s\n" server round "requests/s" p50 p90 p99
for r in $(seq 1 "$ROUNDS"); do
  .build/release/zebra serve --model "$MODEL" --host 127.0.0.1 --port 18080 >/dev/null 2>&1 & Z=$!
  wait_up 18080; read -r rps p50 p90 p99 < <(run_wrk 18080); kill $Z; wait $Z 2>/dev/null || true
  printf "%-12s %5s %12s %8s %8s %8s\n" zebra "$r" "$rps" "$p50" "$p90" "$p99"
  .build-llamacpp/bin/llama-server -m "$MODEL" --host 127.0.0.1 --port 18081 -np 4 -c 4096 >/dev/null 2>&1 & L=$!
  wait_up 18081; read -r rps p50 p90 p99 < <(run_wrk 18081); kill $L; wait $L 2>/dev/null || true
  printf "%-12s %5s %12s %8s %8s %8s\n" llama-server "$r" "$rps" "$p50" "$p90" "$p99"
done
