#!/bin/bash
# The steps of issue 19's million-file goals, quicker than `bench_scale.py --million` (no get,
# no show --json, no before/after): cp -a and a scandir+stat walk as floors, log, re-log
# unchanged, re-log with one file changed, show, diff, verify, gc dry run. Every step is a
# fresh `plait` process after `sync`; prints "step|wall s|user s|sys s|peak KiB".
#
#   benchmarks/scale_1m_steps.sh DATA_FOLDER SCRATCH_FOLDER
#
# DATA_FOLDER: e.g. a bench_scale data set (`bench_scale.py --million --workdir W` makes
# W/data-1000000/files); one of its files is appended to and put back afterwards.
set -u
D=$(realpath "$1"); W=$(realpath -m "$2")
mkdir -p "$W"
export PLAIT_CACHE_DIR=$W/cache
rm -rf "$W/store" "$W/cache" "$W/cp"
m() { label=$1; shift; sync; /usr/bin/time -f "$label|%e|%U|%S|%M" "$@" >/dev/null 2>"$W/err.txt" || { echo "$label FAILED"; cat "$W/err.txt"; }; tail -1 "$W/err.txt"; }
m "cp -a" cp -a "$D" "$W/cp"
rm -rf "$W/cp"
sync
python - "$D" <<'PY'
import os, resource, sys, time
t = time.perf_counter(); n = 0
stack = [sys.argv[1]]
while stack:
    for e in os.scandir(stack.pop()):
        if e.is_dir(follow_symlinks=False): stack.append(e.path)
        else: e.stat(); n += 1
r = resource.getrusage(resource.RUSAGE_SELF)
print(f"walk|{time.perf_counter() - t:.2f}|{r.ru_utime:.2f}|{r.ru_stime:.2f}|{r.ru_maxrss}  files={n}")
PY
m "log" plait --store "$W/store" log "$D" --name data
m "re-log unchanged" plait --store "$W/store" log "$D" --name data
f=$(find "$D" -type f | head -1)
cp -p "$f" "$W/saved.bin"; printf 'changed one file %s' "$(date +%s%N)" >> "$f"
m "re-log one changed" plait --store "$W/store" log "$D" --name data
cp -p "$W/saved.bin" "$f"
m "show" plait --store "$W/store" show data:v1
m "diff" plait --store "$W/store" diff data:v0 data:v1
m "verify" plait --store "$W/store" verify
m "gc dry run" plait --store "$W/store" gc
echo "objects: $(find "$W/store" -type f -not -path '*/cache/*' | wc -l)"
