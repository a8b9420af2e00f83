#!/usr/bin/env bash
# Contract check: schemathesis (all checks) against a live `zebra serve` on SmolLM2, with auth on.
# Excluded: positive_data_acceptance, because schema-valid requests are legitimately refused by rules a
# schema cannot state (token ids beyond the vocabulary, max_tokens above --max-tokens-limit or the
# context, the KV budget). Every response must still be a non-5xx that conforms to openapi.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${ZEBRA_BIN:-$(swift build --show-bin-path)/zebra}"
PORT="${PORT:-18300}"
"$BIN" serve --model models/SmolLM2-135M-Instruct.Q4_1.gguf --host 127.0.0.1 --port "$PORT" \
  --api-key contract-test --max-tokens-limit 16 --kv-budget 256M --log-format json 2>/tmp/zebra-contract.log &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
healthy=0
for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && { healthy=1; break; }; sleep 0.2; done
if [ "$healthy" != 1 ]; then echo "zebra never became healthy on port $PORT; its log:" >&2; cat /tmp/zebra-contract.log >&2; exit 1; fi
schemathesis run openapi.yaml -u "http://127.0.0.1:$PORT" -H "Authorization: Bearer contract-test" \
  -c all --exclude-checks positive_data_acceptance -n "${EXAMPLES:-40}" --request-timeout 60 --generation-deterministic
