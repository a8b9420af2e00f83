#!/usr/bin/env bash
# No Docker engine here, so CI checks the image's runtime stage another way: build the release binary
# as the Dockerfile does (static Swift stdlib), list the shared libraries `ldd` resolves, map each to its
# Debian package, and require that package (or a dependency of one) in the runtime stage's apt list.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --static-swift-stdlib --product zebra --scratch-path .build-static >/dev/null
BIN="$(swift build -c release --static-swift-stdlib --scratch-path .build-static --show-bin-path)/zebra"
RUNTIME=$(awk '/^FROM debian:bookworm-slim AS runtime/{r=1} r && /apt-get install/{for(i=1;i<=NF;i++) if ($i ~ /^lib|^zlib/) print $i; exit}' Dockerfile)
[ -n "$RUNTIME" ] || { echo "no runtime package list found in the Dockerfile"; exit 1; }
ALLOWED=$(printf '%s\n' $RUNTIME libc6; for p in $RUNTIME; do apt-cache depends "$p" 2>/dev/null | awk '/Depends:/{print $2}'; done)
fail=0
while read -r lib path; do
  [ -n "$path" ] || continue
  real=$(readlink -f "$path")
  pkg=$(dpkg -S "$real" 2>/dev/null | head -n1 | cut -d: -f1) || true
  [ -n "$pkg" ] || pkg=$(dpkg -S "$path" 2>/dev/null | head -n1 | cut -d: -f1) || true
  if [ -z "$pkg" ]; then echo "MISSING: $lib ($path) belongs to no Debian package (bundle it or link it statically)"; fail=1; continue; fi
  if ! grep -qx "$pkg" <<<"$ALLOWED"; then echo "MISSING: $lib comes from $pkg, not in the runtime stage"; fail=1; else echo "ok: $lib <- $pkg"; fi
done < <(ldd "$BIN" | awk '/=>/ {print $1, $3}')
exit $fail
