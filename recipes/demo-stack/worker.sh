#!/bin/sh
# demo-stack worker: a heartbeat into the shared volume every 2 s (the web
# service's /health reports it); `worker.sh check` is its healthcheck.
if [ "${1:-}" = check ]; then
  [ -f /data/worker-heartbeat ] && [ $(( $(date +%s) - $(stat -c %Y /data/worker-heartbeat) )) -le 15 ]
  exit
fi
echo "demo worker: started"
trap 'rm -f /data/worker-heartbeat; exit 0' TERM INT
while :; do
  date -u +%Y-%m-%dT%H:%M:%SZ > /data/worker-heartbeat.tmp && mv /data/worker-heartbeat.tmp /data/worker-heartbeat
  sleep 2 & wait $!
done
