#!/usr/bin/env bash
# Derives the worker processes' seccomp allow-list from a trace (engine/src/worker/lockdown.rs,
# `ALLOWED`): runs the worker tests and the fixture suite — whose second run of every fixture
# happens in a worker — with each worker started under `strace -f` and without the filter
# (a test-build-only switch), then prints every system call a worker made after its
# lock-down (`landlock_restrict_self`), with counts, and those missing from ALLOWED.
#
#   bash scripts/worker-syscalls.sh [TEST-FILTER...]     (default: workers:: and fixture::)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v strace >/dev/null || { echo "worker-syscalls: needs strace (Debian package strace)"; exit 2; }
bin=$(cargo test -p corral-cli --test it --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import sys, json
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "it" and m.get("executable"):
        print(m["executable"])')
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cat > "$out/worker" <<WRAP
#!/bin/sh
exec strace -f -ff -qq -o "$out/trace" "$bin" "\$@"
WRAP
chmod +x "$out/worker"
filters=("$@")
[ ${#filters[@]} -gt 0 ] || filters=(workers:: fixture::)
for f in "${filters[@]}"; do
  CORRAL_TEST_WORKER_WRAPPER="$out/worker" CORRAL_WORKER_TRACE_NO_SECCOMP=1 \
    "$bin" "$f" --test-threads 2 >/dev/null 2>&1 || echo "worker-syscalls: some tests of $f failed under the trace (the counts are still what was called)"
done
python3 - "$out" engine/src/worker/lockdown.rs <<'PY'
import collections, glob, os, re, sys
out, src = sys.argv[1], sys.argv[2]
calls = collections.Counter()
pat = re.compile(r'^(?:\d+\s+)?([a-z0-9_]+)\(')
files = glob.glob(os.path.join(out, 'trace.*'))
for path in files:
    lines = open(path, errors='replace').read().splitlines()
    marker = next((i for i, l in enumerate(lines) if l.startswith('landlock_restrict_self(')), None)
    # A worker's main thread counts after its lock-down; its other threads start after it.
    start = marker + 1 if marker is not None else 0
    if marker is None and any(l.startswith('execve(') for l in lines[:3]):
        continue  # a process that never locked down (not a worker)
    for l in lines[start:]:
        m = pat.match(l)
        if m:
            calls[m.group(1)] += 1
allowed = set(re.findall(r'\(libc::SYS_([a-z0-9_]+),', open(src).read()))
print(f"{len(files)} traced threads; system calls made after lock-down:")
for name, n in sorted(calls.items()):
    mark = '' if name in allowed or name in ('clone', 'clone3') else '   <-- not in ALLOWED'
    print(f"  {name:24} {n:>9}{mark}")
PY
