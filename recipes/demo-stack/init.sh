#!/bin/sh
# demo-stack init: a one-shot job, like airflow-init: prepares the shared
# volume and exits 0 (or 1, and the recipe stops with its log).
set -e
[ -n "$GREETING" ] || { echo "demo init: GREETING is not set" >&2; exit 1; }
echo "$GREETING" > /data/greeting
date -u +%Y-%m-%dT%H:%M:%SZ > /data/initialized
echo "demo init: the data volume is ready"
