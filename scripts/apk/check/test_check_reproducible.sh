#!/usr/bin/env bash
# Self-test of check-reproducible.sh: apkzip.py on the same inputs from two
# checkouts must be found identical, and a build that stamps the time into
# an entry must be found different, with that entry named.
#
#   scripts/apk/check/test_check_reproducible.sh
#
# Ends with "N passed, N failed"; exit status 1 on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/scripts/apk/check"
work="$ROOT/target/apk-check/repro-selftest"
rm -rf "$work"
mkdir -p "$work/in/dex" "$work/in/lib/arm64-v8a"

# Inputs whose content does not matter to the zip writer, only their bytes.
python3 - "$work/in" <<'EOF'
import os, sys, zipfile
d = sys.argv[1]
with zipfile.ZipFile(f"{d}/resources.ap_", "w") as z:
    z.writestr("AndroidManifest.xml", b"\3\0\x08\0" + os.urandom(64), zipfile.ZIP_DEFLATED)
    z.writestr("resources.arsc", b"\2\0\x0c\0" + os.urandom(99), zipfile.ZIP_STORED)
    z.writestr("res/raw/a.bin", os.urandom(300), zipfile.ZIP_DEFLATED)
open(f"{d}/dex/classes.dex", "wb").write(b"dex\n035\0" + os.urandom(200))
open(f"{d}/lib/arm64-v8a/libx.so", "wb").write(b"\x7fELF" + os.urandom(5000))
EOF

pack="python3 scripts/apk/package/apkzip.py --out target/apk/dotcore-debug-unsigned.apk \
--resources $work/in/resources.ap_ --dex-dir $work/in/dex --lib-dir $work/in/lib"
stamp="python3 -c 'import time, zipfile; zipfile.ZipFile(\"target/apk/dotcore-debug-unsigned.apk\", \"a\").writestr(\"stamp.txt\", str(time.time_ns()))'"

passed=0
failed=0
result() {
    if [ "$1" = ok ]; then passed=$((passed + 1)); printf 'PASS: %s\n' "$2"
    else failed=$((failed + 1)); printf 'FAIL: %s\n' "$2"; fi
}

if out="$(bash "$HERE/check-reproducible.sh" --work "$work/same" --build "$pack" 2>&1)" &&
    grep -q '^reproducible: ' <<<"$out"; then
    result ok "the same inputs from two checkouts give identical bytes"
else
    printf '%s\n' "$out"
    result bad "the same inputs from two checkouts give identical bytes"
fi

if out="$(bash "$HERE/check-reproducible.sh" --work "$work/stamp" --build "$pack && $stamp" 2>&1)"; then
    printf '%s\n' "$out"
    result bad "a time-stamped entry is reported (the check passed instead)"
elif grep -q '^differs: stamp.txt: .*content' <<<"$out"; then
    result ok "a time-stamped entry is reported: $(grep '^differs: stamp.txt' <<<"$out")"
else
    printf '%s\n' "$out"
    result bad "a time-stamped entry is reported (no line naming stamp.txt)"
fi

printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
