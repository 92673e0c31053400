#!/usr/bin/env bash
# Starts the cluster demo's Redis on one machine: six `redis-server --cluster-enabled yes`
# nodes (ports 7101-7106, cluster-node-timeout 1000 ms, cluster-require-full-coverage no),
# made into three primaries with a replica each by `redis-cli --cluster create`.
# Everything lives in $DEMO_DIR (default: $TMPDIR or /tmp, then
# failover-buffer-redis-cluster-demo): pid files, logs, nodes.conf files.
#
#   redis-router/demo/cluster.sh         start
#   redis-router/demo/cluster.sh stop    stop every process it started, by pid
set -euo pipefail
run="${DEMO_DIR:-${TMPDIR:-/tmp}/failover-buffer-redis-cluster-demo}"
ports=(7101 7102 7103 7104 7105 7106)

if [ "${1:-start}" = stop ]; then
    stopped=0
    for pidfile in "$run"/*.pid; do
        [ -e "$pidfile" ] || continue
        if kill "$(cat "$pidfile")" 2>/dev/null; then
            stopped=$((stopped + 1))
        fi
        rm -f "$pidfile"
    done
    rm -f "$run"/nodes-*.conf
    echo "stopped $stopped Redis processes (pid files in $run)"
    exit 0
fi

mkdir -p "$run"
for port in "${ports[@]}"; do
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
        --dir "$run" --pidfile "$run/node-$port.pid" --logfile "node-$port.log" \
        --cluster-enabled yes --cluster-config-file "nodes-$port.conf" \
        --cluster-node-timeout 1000 --cluster-require-full-coverage no
done
for port in "${ports[@]}"; do
    until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") \
    --cluster-replicas 1 --cluster-yes >"$run/create.log"
until redis-cli -p 7101 cluster info | grep -q cluster_state:ok; do sleep 0.1; done
redis-cli -p 7101 cluster nodes | awk '{print $2, $3, $9}' | sort
echo "stop with: $0 stop"
