#!/usr/bin/env bash
# DoT stub comparison: the same UDP load through three local stubs that all
# forward over DNS-over-TLS to one local Unbound DoT server:
#   1. dotcore proxy        (this project, release build)
#   2. stubby               (Debian's, getdns)
#   3. Unbound as forwarder (forward-tls-upstream, caches as small as allowed)
# Per stub: client CPU per query, avg/p50/p99/max latency, lost queries, TLS
# handshakes, peak RSS. Prints a Markdown table and writes it, with the
# command and date, into docs/BENCHMARKS.md ("DoT stub comparison").
#
# Everything runs on 127.0.0.1; every wait is bounded; everything started
# here is stopped on exit (by PID). Takes about 2.5 minutes after the build
# (3 rounds x 3 stubs x ~13 s).
#
# Usage: scripts/bench.sh [--qps N] [--seconds N] [--clients N] [--rounds N]
#                         [--no-doc] [--no-build] [--no-capture]
#                         [--stubs a,b,c] [--profile] [--baseline] [--nice N]
#                         [--cpu LIST]
#   --no-build    use the existing target/release/dotcore (under
#                 $CARGO_TARGET_DIR if set)
#   --no-capture  don't run tcpdump (no handshake counts for stubby/Unbound)
#   --no-doc      print the table only, leave docs/BENCHMARKS.md alone
#   --rounds      rounds per stub, interleaved (default 3); the table shows
#                 each stub's median round by CPU per query
#   --stubs       subset/order of dotcore,stubby,unbound
#   --profile     afterwards, profile dotcore under the same load: perf stat
#                 (syscalls, context switches), perf record, strace -c;
#                 summary printed, reports kept in the run directory
#   --baseline    also measure bench/dot/udp_echo.c (answers at once, no DoT;
#                 one round): the floor set by loopback UDP + wake-ups
#   --nice N      run upstream, stubs and dnsperf at nice N (e.g. -5) to cut
#                 noise from other work on a shared machine (root for N < 0)
#   --cpu LIST    pin upstream, stubs and dnsperf to these CPUs (taskset -c);
#                 one CPU takes cross-CPU wake-ups out of the picture
#   --instructions instead of the load rounds: user-space instructions and
#                 syscalls per query of each stub under callgrind at 100 qps
#                 (default stubs dotcore,stubby,udp-echo); writes its own
#                 section of docs/BENCHMARKS.md (~3 min)
# Env: BENCH_KEEP=1 keeps the run directory (it is printed either way).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEMPLATES=$ROOT/bench/dot
DOC=$ROOT/docs/BENCHMARKS.md
QPS=10000
SECONDS_LOAD=10
CLIENTS=4
ROUNDS=3
NAMES=100000
TIMEOUT_S=5
OUTSTANDING=1000
BUILD=1
CAPTURE=1
WRITE_DOC=1
PROFILE=0
BASELINE=0
INSTR=0
INSTR_QPS=100
INSTR_SMALL=200
INSTR_BIG=1200
NICE=0
CPUS=
STUBS=dotcore,stubby,unbound
ORIG_ARGS=("$@")
START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')

while [ $# -gt 0 ]; do
    case $1 in
        --qps) QPS=$2; shift 2 ;;
        --seconds) SECONDS_LOAD=$2; shift 2 ;;
        --clients) CLIENTS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --stubs) STUBS=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --no-capture) CAPTURE=0; shift ;;
        --no-doc) WRITE_DOC=0; shift ;;
        --profile) PROFILE=1; shift ;;
        --baseline) BASELINE=1; shift ;;
        --instructions) INSTR=1; CAPTURE=0; shift ;;
        --nice) NICE=$2; shift 2 ;;
        --cpu) CPUS=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed -n 's/^# \{0,1\}//p'; exit 0 ;;
        *) echo "bench: unknown argument $1" >&2; exit 2 ;;
    esac
done

step() { printf '==> bench: %s\n' "$*" >&2; }
die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------------
# command -> Debian package
declare -A PKG=([unbound]=unbound [unbound-control]=unbound [dnsperf]=dnsperf
    [stubby]=stubby [openssl]=openssl [dig]=bind9-dnsutils [python3]=python3
    [getconf]=libc-bin)
if [ "$CAPTURE" = 1 ]; then PKG[tcpdump]=tcpdump; PKG[tshark]=tshark; fi
if [ "$PROFILE" = 1 ]; then PKG[strace]=strace; fi
if [ "$BASELINE" = 1 ] || [ "$INSTR" = 1 ]; then PKG[cc]=gcc; fi
if [ "$INSTR" = 1 ]; then PKG[valgrind]=valgrind; PKG[strace]=strace; fi
missing=()
for c in "${!PKG[@]}"; do
    command -v "$c" >/dev/null 2>&1 || missing+=("${PKG[$c]}")
done
if [ ${#missing[@]} -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    step "installing missing packages: ${missing[*]}"
    SUDO=()
    [ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq || die "apt-get update failed"
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
    for c in "${!PKG[@]}"; do
        command -v "$c" >/dev/null 2>&1 || die "$c still missing after installing ${PKG[$c]}"
    done
fi
# Debian's unbound package enables a system service on port 53; we never use
# it (all our instances have their own config and ports).

# --- build -------------------------------------------------------------------
# Where cargo puts it: CARGO_TARGET_DIR as cargo reads it (relative to the
# repo root, where the build below runs), else the repo's target/.
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
DOTCORE=$TARGET_DIR/release/dotcore
if [ "$BUILD" = 1 ]; then
    step "building dotcore (release)"
    (cd "$ROOT" && cargo build --release -p dotcore --features cli) || die "cargo build failed"
fi
[ -x "$DOTCORE" ] || die "$DOTCORE missing (build with: cargo build --release -p dotcore --features cli)"

# --- run directory, cleanup ----------------------------------------------------
RUN=$(mktemp -d /tmp/dotcore-bench.XXXXXX)
PIDS=()
cleanup() {
    local rc=$?
    local p
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ "${BENCH_KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
        echo "bench: run directory kept: $RUN" >&2
    else
        rm -rf "$RUN"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget_pid() { # drop $1 from PIDS once it is gone
    local p keep=()
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

stop_pid() { # stop_pid PID [SIGNAL]: signal, wait up to 10 s, then KILL
    local pid=$1 sig=${2:-TERM}
    kill -"$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
}

free_port() { # a port free on 127.0.0.1 for both TCP and UDP
    python3 - <<'EOF'
import socket
for _ in range(200):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        t.close(); continue
    u.close(); t.close()
    print(port)
    break
EOF
}

fill() { # fill TEMPLATE OUT: replace @DIR@ @DOT_PORT@ @STUB_PORT@
    sed -e "s#@DIR@#$RUN#g" -e "s#@DOT_PORT@#$DOT_PORT#g" -e "s#@STUB_PORT@#$STUB_PORT#g" "$1" >"$2"
}

cpu_ticks() { # utime+stime of PID (all threads) in clock ticks
    # Field 2 (comm) may hold spaces: cut after the last ')'.
    local s
    s=$(cat "/proc/$1/stat") || return 1
    s=${s##*) }
    set -- $s
    # After comm: state=$1 ... utime is field 14 overall = $12 here, stime $13.
    echo $(( ${12} + ${13} ))
}

sched_ns() { # on-CPU nanoseconds of all threads of PID (schedstat)
    local t sum=0 v
    for t in /proc/"$1"/task/*/schedstat; do
        read -r v _ <"$t" 2>/dev/null || continue
        sum=$((sum + v))
    done
    echo $sum
}

udp_rcvbuf_errors() { # machine-wide UDP datagrams dropped on a full socket buffer
    awk '$1 == "Udp:" && $2 ~ /^[0-9]+$/ {print $6}' /proc/net/snmp
}

vmhwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

proc_sample() { # proc_sample PID SUFFIX: key=value lines for the metrics file
    local pid=$1 sfx=$2 s
    s=$(cat "/proc/$pid/stat") || return 1
    s=${s##*) }
    set -- $s
    # After comm, field N of /proc/PID/stat is ${N-2}: utime 14, stime 15.
    echo "utime_$sfx=${12}"
    echo "stime_$sfx=${13}"
    awk -v sfx="$sfx" '/^voluntary_ctxt_switches:/ {print "vcsw_" sfx "=" $2}
        /^nonvoluntary_ctxt_switches:/ {print "ivcsw_" sfx "=" $2}' "/proc/$pid/status"
}

upstream_stat() { # upstream_stat NAME: one counter from the upstream Unbound
    unbound-control -c "$RUN/upstream.conf" stats_noreset 2>/dev/null \
        | awk -F= -v k="$1" '$1 == k {print $2; found=1} END {if (!found) print 0}'
}

dig_a() { # dig_a PORT NAME -> the A record (or nothing)
    dig @127.0.0.1 -p "$1" "$2" A +short +time=1 +tries=1 +retry=0 2>/dev/null | head -n1
}

wait_ready() { # wait_ready LABEL PORT PID LOG: bounded polling with dig
    local label=$1 port=$2 pid=$3 log=$4 i t0=$SECONDS
    for i in $(seq 1 40); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "---- $log" >&2; tail -n 30 "$log" >&2 || true
            die "$label exited before becoming ready"
        fi
        if [ "$(dig_a "$port" "ready$i.bench")" = "192.0.2.100" ]; then
            step "$label ready on 127.0.0.1:$port"
            return 0
        fi
        sleep 0.25
    done
    echo "---- $log" >&2; tail -n 30 "$log" >&2 || true
    die "$label never answered on 127.0.0.1:$port (40 tries in $((SECONDS - t0)) s)"
}

RUN_PREFIX=()
[ "$NICE" != 0 ] && RUN_PREFIX=(nice -n "$NICE")
if [ -n "$CPUS" ]; then
    command -v taskset >/dev/null 2>&1 || die "--cpu needs taskset (util-linux)"
    RUN_PREFIX+=(taskset -c "$CPUS")
fi
if [ "$INSTR" = 1 ]; then
    [ "$STUBS" = dotcore,stubby,unbound ] && STUBS=dotcore,stubby
    BASELINE=1
fi
if [ "$BASELINE" = 1 ]; then
    cc -O2 -o "$RUN/udp_echo" "$TEMPLATES/udp_echo.c" || die "cannot build udp_echo.c"
    STUBS="$STUBS,udp-echo"
fi
if [ "$(awk '{print int($1)}' /proc/loadavg)" -ge "$(nproc)" ]; then
    echo "bench: warning: load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores:" \
        "other work will inflate CPU per query and cause losses (see --nice)" >&2
fi

# --- certificates: a self-signed P-256 CA and a P-256 leaf for dot.test ---------
step "run directory $RUN"
cd "$RUN"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout ca.key -out ca.pem -days 2 -subj "/CN=dotcore bench CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout server.key -out server.csr -subj "/CN=dot.test" 2>/dev/null
printf '%s\n' "subjectAltName=DNS:dot.test,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >leaf.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile leaf.ext -out leaf.pem 2>/dev/null
cat leaf.pem ca.pem >server.pem
openssl verify -CAfile ca.pem leaf.pem >/dev/null || die "certificate generation failed"

# --- input: unique names -----------------------------------------------------------
awk -v n="$NAMES" 'BEGIN { for (i = 1; i <= n; i++) printf "q%d.bench A\n", i }' >queries.txt

# --- upstream DoT server ---------------------------------------------------------
DOT_PORT=$(free_port)
STUB_PORT=0
fill "$TEMPLATES/upstream.conf.in" upstream.conf
unbound-checkconf upstream.conf >/dev/null || die "upstream.conf invalid"
"${RUN_PREFIX[@]}" unbound -c upstream.conf >upstream.out 2>&1 &
UP_PID=$!
PIDS+=("$UP_PID")
for i in $(seq 1 50); do
    kill -0 "$UP_PID" 2>/dev/null || { cat upstream.out upstream.log >&2 2>/dev/null; die "upstream Unbound exited"; }
    unbound-control -c upstream.conf status >/dev/null 2>&1 && break
    [ "$i" = 50 ] && die "upstream Unbound not ready after 10 s"
    sleep 0.2
done
# It must really serve DoT with our certificate.
if command -v kdig >/dev/null 2>&1; then
    [ "$(kdig @127.0.0.1 -p "$DOT_PORT" +tls-ca="$RUN/ca.pem" +tls-hostname=dot.test \
        +time=2 +retry=0 +short check.bench A 2>/dev/null | head -n1)" = 192.0.2.100 ] \
        || die "upstream does not answer DoT on 127.0.0.1:$DOT_PORT"
else
    echo | timeout 5 openssl s_client -connect 127.0.0.1:"$DOT_PORT" -CAfile ca.pem \
        -verify_hostname dot.test -verify_return_error >/dev/null 2>&1 \
        || die "upstream TLS on 127.0.0.1:$DOT_PORT does not verify"
fi
step "upstream Unbound (pid $UP_PID) serving DoT on 127.0.0.1:$DOT_PORT"

CLK_TCK=$(getconf CLK_TCK)
DNSPERF_ARGS=(-s 127.0.0.1 -d "$RUN/queries.txt" -c "$CLIENTS" -q "$OUTSTANDING" -t "$TIMEOUT_S"
    -Q "$QPS" -l "$SECONDS_LOAD" -n 1 -v)

start_capture() { # tcpdump of SYNs to / ServerHellos from the DoT port
    CAP_PID=
    [ "$CAPTURE" = 1 ] || return 0
    local filter="tcp port $DOT_PORT and ((tcp[tcpflags] & (tcp-syn|tcp-ack)) == tcp-syn or (src port $DOT_PORT and tcp[((tcp[12:1] & 0xf0) >> 2):1] = 0x16 and tcp[((tcp[12:1] & 0xf0) >> 2)+5:1] = 0x02))"
    # Bounded: it is stopped after the stub, and dies by itself after 5 min.
    timeout 300 tcpdump -i lo -n -s 0 --immediate-mode -U -w "$1/handshakes.pcap" "$filter" \
        >"$1/tcpdump.log" 2>&1 &
    CAP_PID=$!
    PIDS+=("$CAP_PID")
    for _ in $(seq 1 50); do
        grep -q "listening on" "$1/tcpdump.log" 2>/dev/null && return 0
        kill -0 "$CAP_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench: warning: tcpdump did not start (handshake counts from capture unavailable):" >&2
    cat "$1/tcpdump.log" >&2 || true
    stop_pid "$CAP_PID"
    CAP_PID=
}

start_stub() { # start_stub NAME DIR [PREFIX...]: on a fresh STUB_PORT; sets STUB_PID
    local name=$1 dir=$2 log=$2/stub.log
    shift 2
    STUB_PORT=$(free_port)
    case $name in
        dotcore)
            "$@" "$DOTCORE" proxy --listen 127.0.0.1:"$STUB_PORT" --server 127.0.0.1:"$DOT_PORT" \
                --name dot.test --ca "$RUN/ca.pem" --stats >"$dir/stats.json" 2>"$log" &
            ;;
        stubby)
            mkdir -p "$RUN/stubby-appdata"
            fill "$TEMPLATES/stubby.yml.in" "$dir/stubby.yml"
            "$@" stubby -C "$dir/stubby.yml" >"$log" 2>&1 &
            ;;
        unbound)
            fill "$TEMPLATES/forwarder.conf.in" "$dir/forwarder.conf"
            unbound-checkconf "$dir/forwarder.conf" >/dev/null || die "forwarder.conf invalid"
            "$@" unbound -c "$dir/forwarder.conf" >"$log" 2>&1 &
            ;;
        udp-echo)
            "$@" "$RUN/udp_echo" "$STUB_PORT" >"$log" 2>&1 &
            ;;
        *) die "unknown stub $name" ;;
    esac
    STUB_PID=$!
    PIDS+=("$STUB_PID")
    wait_ready "$name" "$STUB_PORT" "$STUB_PID" "$log"
}

run_stub() { # run_stub NAME ROUND
    local name=$1 dir="$RUN/$1.r$2" pid
    mkdir -p "$dir"
    start_capture "$dir"
    start_stub "$name" "$dir" "${RUN_PREFIX[@]}"
    pid=$STUB_PID

    # No answer may come from a stub cache. dotcore and stubby: every load
    # name is unique (-n 1: one pass over the file), and stubby has no cache.
    # Unbound: its cache can't be switched off, so check that a repeated name
    # still reaches the upstream.
    local check=""
    if [ "$name" = unbound ] || [ "$name" = stubby ]; then
        local b a
        b=$(upstream_stat total.num.queries)
        dig_a "$STUB_PORT" repeat.bench >/dev/null
        dig_a "$STUB_PORT" repeat.bench >/dev/null
        dig_a "$STUB_PORT" repeat.bench >/dev/null
        a=$(upstream_stat total.num.queries)
        check="cache check: 3 identical queries -> upstream +$((a - b))"
        [ $((a - b)) -ge 3 ] || die "$name answered repeated queries from a cache (upstream saw +$((a - b)) of 3)"
    fi

    {
        echo "pid=$pid"
        echo "clk_tck=$CLK_TCK"
        echo "cache_check=$check"
        echo "ticks_before=$(cpu_ticks "$pid")"
        proc_sample "$pid" before
        echo "loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)"
        echo "udp_rcvbuf_errors_before=$(udp_rcvbuf_errors)"
        echo "sched_ns_before=$(sched_ns "$pid")"
        echo "up_ticks_before=$(cpu_ticks "$UP_PID")"
        echo "up_queries_before=$(upstream_stat total.num.queries)"
        echo "up_tls_before=$(upstream_stat num.query.tls)"
        echo "up_tls_resume_before=$(upstream_stat num.query.tls.resume)"
    } >"$dir/metrics"
    step "$name (round $2/$ROUNDS): dnsperf -Q $QPS -l $SECONDS_LOAD -c $CLIENTS (pid $pid)"
    # Bounded: -l plus the query timeout; `timeout` as a backstop.
    timeout $((SECONDS_LOAD + TIMEOUT_S + 30)) "${RUN_PREFIX[@]}" dnsperf "${DNSPERF_ARGS[@]}" -p "$STUB_PORT" \
        >"$dir/dnsperf.out" 2>&1 || die "dnsperf against $name failed: $(tail -n 5 "$dir/dnsperf.out")"
    kill -0 "$pid" 2>/dev/null || die "$name died during the load"
    {
        echo "ticks_after=$(cpu_ticks "$pid")"
        proc_sample "$pid" after
        echo "loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)"
        echo "udp_rcvbuf_errors_after=$(udp_rcvbuf_errors)"
        echo "sched_ns_after=$(sched_ns "$pid")"
        echo "up_ticks_after=$(cpu_ticks "$UP_PID")"
        echo "up_queries_after=$(upstream_stat total.num.queries)"
        echo "up_tls_after=$(upstream_stat num.query.tls)"
        echo "up_tls_resume_after=$(upstream_stat num.query.tls.resume)"
        echo "vmhwm_kib=$(vmhwm_kib "$pid")"
    } >>"$dir/metrics"
    grep -E "Queries (sent|completed|lost)|Average Latency" "$dir/dnsperf.out" | sed 's/^/    /' >&2
    # dotcore prints its counters on SIGTERM.
    stop_pid "$pid" TERM
    if [ -n "$CAP_PID" ]; then
        sleep 0.2
        stop_pid "$CAP_PID" TERM
    fi
}

IFS=, read -r -a STUB_LIST <<<"$STUBS"

# --- instructions and syscalls per query (--instructions) ----------------------------
# Noise on a shared VM moves CPU time, not counts. Each stub runs twice under
# callgrind (user-space instructions) and twice under `strace -c -f`
# (syscalls; callgrind's own sysCount is inflated by valgrind's thread
# scheduling), for INSTR_SMALL and INSTR_BIG unique queries at a low fixed
# rate. The difference between the two runs over the difference in queries
# is the cost of one query, with start-up, the TLS handshake and shutdown
# cancelled out.
instr_run() { # instr_run callgrind|strace NAME N: sets INSTR_RESULT="count completed"
    local tool=$1 name=$2 n=$3 dir="$RUN/instr.$1.$2.$3" out completed
    mkdir -p "$dir"
    awk -v n="$n" -v p="$name$n" 'BEGIN { for (i = 1; i <= n; i++) printf "%s-%d.bench A\n", p, i }' \
        >"$dir/queries.txt"
    case $tool in
        callgrind) start_stub "$name" "$dir" valgrind --tool=callgrind \
            --callgrind-out-file="$dir/callgrind.out" ;;
        strace) start_stub "$name" "$dir" strace -f -c -o "$dir/strace.txt" ;;
    esac
    timeout $((n / INSTR_QPS + TIMEOUT_S + 60)) dnsperf -s 127.0.0.1 -p "$STUB_PORT" -d "$dir/queries.txt" \
        -c 1 -q 10 -t "$TIMEOUT_S" -Q "$INSTR_QPS" -n 1 >"$dir/dnsperf.out" 2>&1 \
        || die "dnsperf against $name under $tool failed: $(tail -n 5 "$dir/dnsperf.out")"
    completed=$(awk '/Queries completed:/ {print $3}' "$dir/dnsperf.out")
    if [ "$tool" = callgrind ]; then
        # Counters so far, dumped by the running process: stubs differ in
        # how (and whether) they exit on a signal.
        rm -f "$dir"/callgrind.out*
        timeout 60 callgrind_control --dump=after-load "$STUB_PID" >/dev/null 2>&1 \
            || die "callgrind_control could not dump $name"
        for _ in $(seq 1 100); do
            out=$(grep -l '^summary:\|^totals:' "$dir"/callgrind.out* 2>/dev/null | head -n1 || true)
            [ -n "$out" ] && break
            sleep 0.1
        done
        [ -n "$out" ] || die "no callgrind dump from $name"
        stop_pid "$STUB_PID" TERM
        INSTR_RESULT="$(awk '/^(summary|totals):/ {v = $2} END {print v}' "$out") $completed"
    else
        # strace writes its table when the traced process exits; a signal
        # to strace itself would only detach it.
        local traced
        traced=$(pgrep -P "$STUB_PID" | head -n1 || true)
        [ -n "$traced" ] && kill -TERM "$traced" 2>/dev/null
        stop_pid "$STUB_PID" TERM
        [ -s "$dir/strace.txt" ] || die "no strace summary from $name"
        INSTR_RESULT="$(awk '$NF == "total" {print $4}' "$dir/strace.txt") $completed"
    fi
}

if [ "$INSTR" = 1 ]; then
    command -v valgrind >/dev/null 2>&1 || die "--instructions needs valgrind"
    command -v callgrind_control >/dev/null 2>&1 || die "--instructions needs callgrind_control (valgrind)"
    INSTR_ROWS=$RUN/instructions.tsv
    : >"$INSTR_ROWS"
    for s in "${STUB_LIST[@]}"; do
        step "$s under callgrind and strace: $INSTR_SMALL and $INSTR_BIG queries at $INSTR_QPS qps"
        row=("$s")
        for tool in callgrind strace; do
            for n in "$INSTR_SMALL" "$INSTR_BIG"; do
                instr_run "$tool" "$s" "$n"
                read -r count completed <<<"$INSTR_RESULT"
                row+=("$count" "$completed")
            done
        done
        (IFS=$'\t'; echo "${row[*]}") >>"$INSTR_ROWS"
    done
    {
        echo "date=$START_DATE (start; finished $(date -u '+%H:%M UTC'))"
        echo "command=scripts/bench.sh${ORIG_ARGS[*]:+ ${ORIG_ARGS[*]}}"
        rev=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')
        [ -n "$(cd "$ROOT" && git status --porcelain -- rust-core 2>/dev/null | head -n1)" ] \
            && rev="$rev+uncommitted rust-core changes"
        echo "versions=dotcore $rev; $(stubby -V 2>&1 | head -n1); $(valgrind --version); $(strace -V | head -n1)"
        echo "load=dnsperf -c 1 -q 10 -Q $INSTR_QPS -n 1, $INSTR_SMALL and $INSTR_BIG unique names per stub"
    } >"$RUN/instr-meta"
    doc_args=()
    [ "$WRITE_DOC" = 1 ] && doc_args=(--doc "$DOC")
    python3 "$TEMPLATES/instructions_report.py" "$INSTR_ROWS" --meta "$RUN/instr-meta" "${doc_args[@]}"
    exit 0
fi

# Rounds interleave the stubs so that noise from other work on the machine
# spreads over all of them; the report takes each stub's median round.
for round in $(seq 1 "$ROUNDS"); do
    for s in "${STUB_LIST[@]}"; do
        # The UDP echo floor is a reference: one round is enough.
        [ "$s" = udp-echo ] && [ "$round" -gt 1 ] && continue
        run_stub "$s" "$round"
    done
done

# --- report --------------------------------------------------------------------------
dotcore_rev=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')
dirty=$(cd "$ROOT" && git status --porcelain -- rust-core 2>/dev/null | head -n1)
[ -n "$dirty" ] && dotcore_rev="$dotcore_rev+uncommitted rust-core changes"
{
    echo "date=$START_DATE (start; finished $(date -u '+%H:%M UTC'))"
    echo "machine=$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), Linux $(uname -r)"
    echo "command=scripts/bench.sh${ORIG_ARGS[*]:+ ${ORIG_ARGS[*]}}"
    echo "dnsperf=dnsperf -s 127.0.0.1 -p STUB_PORT -d queries.txt -c $CLIENTS -q $OUTSTANDING -t $TIMEOUT_S -Q $QPS -l $SECONDS_LOAD -n 1 -v"
    echo "names=$NAMES"
    echo "versions=dotcore $dotcore_rev; $(stubby -V 2>&1 | head -n1); Unbound $(unbound -V 2>&1 | sed -n 's/^Version //p' | head -n1); dnsperf $(dnsperf -h 2>&1 | sed -n 's/^Version //p' | head -n1); $(openssl version | cut -d' ' -f1-2)"
} >"$RUN/meta"

doc_args=()
[ "$WRITE_DOC" = 1 ] && doc_args=(--doc "$DOC")
mkdir -p "$(dirname "$DOC")"
echo
python3 "$TEMPLATES/report.py" "$RUN" --dot-port "$DOT_PORT" --stubs "$STUBS" --rounds "$ROUNDS" \
    --meta "$RUN/meta" "${doc_args[@]}"
echo
[ "$WRITE_DOC" = 1 ] && step "table written to $DOC"

# --- optional profile of dotcore ----------------------------------------------------------
# Each tool attaches to a running dotcore for 3 s in the middle of a 5 s load
# at the same rate (warm-up and shutdown excluded).
if [ "$PROFILE" = 1 ]; then
    mkdir -p "$RUN/profile"
    prof_run() { # prof_run TAG: dotcore under load, the tool for TAG attached
        local tag=$1; shift
        STUB_PORT=$(free_port)
        "$DOTCORE" proxy --listen 127.0.0.1:"$STUB_PORT" --server 127.0.0.1:"$DOT_PORT" \
            --name dot.test --ca "$RUN/ca.pem" --stats >"$RUN/profile/$tag.stats" 2>"$RUN/profile/$tag.log" &
        local dpid=$! lpid
        PIDS+=("$dpid")
        wait_ready "dotcore ($tag)" "$STUB_PORT" "$dpid" "$RUN/profile/$tag.log"
        timeout 40 dnsperf -s 127.0.0.1 -p "$STUB_PORT" -d "$RUN/queries.txt" -c "$CLIENTS" \
            -q "$OUTSTANDING" -t "$TIMEOUT_S" -Q "$QPS" -l 5 -n 1 >"$RUN/profile/$tag.dnsperf" 2>&1 &
        lpid=$!
        PIDS+=("$lpid")
        sleep 1
        case $tag in
            perf-record)
                timeout 20 perf record -e cpu-clock -F 4000 --call-graph dwarf,16384 -p "$dpid" \
                    -o "$RUN/profile/perf.data" -- sleep 3 >/dev/null 2>&1 || true ;;
            perf-stat)
                timeout 20 perf stat -x, -o "$RUN/profile/perf-stat.csv" -e "$PERF_STAT_EVENTS" \
                    -p "$dpid" -- sleep 3 >/dev/null 2>&1 || true ;;
            strace)
                timeout -s INT 3 strace -c -f -p "$dpid" -o "$RUN/profile/strace.txt" >/dev/null 2>&1 || true ;;
        esac
        stop_pid "$lpid" TERM 2>/dev/null || true
        wait "$lpid" 2>/dev/null || true
        stop_pid "$dpid" TERM
    }
    PERF_STAT_EVENTS=task-clock,context-switches,raw_syscalls:sys_enter
    for sc in sendto recvfrom sendmsg recvmsg sendmmsg recvmmsg writev write read readv epoll_wait; do
        PERF_STAT_EVENTS+=",syscalls:sys_enter_$sc"
    done
    if command -v perf >/dev/null 2>&1 && perf stat -e task-clock true >/dev/null 2>&1; then
        step "profile: perf stat (syscalls, context switches; 3 s at $QPS qps)"
        prof_run perf-stat
        step "profile: perf record (3 s at $QPS qps)"
        prof_run perf-record
        perf report -i "$RUN/profile/perf.data" --no-children --sort dso -g none --stdio \
            >"$RUN/profile/perf-dso.txt" 2>/dev/null || true
        perf report -i "$RUN/profile/perf.data" --no-children --sort dso,sym -g none --stdio \
            >"$RUN/profile/perf-sym.txt" 2>/dev/null || true
        perf report -i "$RUN/profile/perf.data" --children --sort sym -g none --stdio \
            >"$RUN/profile/perf-children.txt" 2>/dev/null || true
    fi
    if command -v strace >/dev/null 2>&1; then
        step "profile: strace -c -f (3 s at $QPS qps; strace slows dotcore, so counts per query only)"
        prof_run strace
    fi
    BENCH_KEEP=1
    # dnsperf sends at a fixed rate (-Q), so the 3 s window holds QPS x 3.
    python3 "$TEMPLATES/profile_summary.py" "$RUN/profile" "$((QPS * 3))" | tee "$RUN/profile/summary.md"
    step "profile reports in $RUN/profile"
fi
