#!/usr/bin/env bash
# Starts the demo's Redis on one machine: a primary (port 7001), its replica (7002) and three
# Sentinels (26380-26382, quorum 2, down-after 1000 ms) monitoring it as "mymaster".
# Everything lives in $DEMO_DIR (default: $TMPDIR or /tmp, then failover-buffer-redis-demo):
# pid files, logs, configs.
#
#   redis-router/demo/sentinels.sh         start
#   redis-router/demo/sentinels.sh stop    stop every process it started, by pid
set -euo pipefail
run="${DEMO_DIR:-${TMPDIR:-/tmp}/failover-buffer-redis-demo}"

if [ "${1:-start}" = stop ]; then
    stopped=0
    for pidfile in "$run"/*.pid; do
        [ -e "$pidfile" ] || continue
        if kill "$(cat "$pidfile")" 2>/dev/null; then
            stopped=$((stopped + 1))
        fi
        rm -f "$pidfile"
    done
    echo "stopped $stopped Redis processes (pid files in $run)"
    exit 0
fi

mkdir -p "$run"
common=(--bind 127.0.0.1 --save "" --appendonly no --daemonize yes --dir "$run")
redis-server --port 7001 --pidfile "$run/primary.pid" --logfile primary.log "${common[@]}"
redis-server --port 7002 --pidfile "$run/replica.pid" --logfile replica.log "${common[@]}" \
    --replicaof 127.0.0.1 7001
for port in 26380 26381 26382; do
    cat > "$run/sentinel-$port.conf" <<CONF
port $port
bind 127.0.0.1
daemonize yes
dir $run
pidfile $run/sentinel-$port.pid
logfile sentinel-$port.log
sentinel monitor mymaster 127.0.0.1 7001 2
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 5000
CONF
    redis-sentinel "$run/sentinel-$port.conf"
done
echo "primary 127.0.0.1:7001, replica 127.0.0.1:7002, Sentinels 127.0.0.1:26380-26382 (logs in $run)"
echo "stop with: $0 stop"
