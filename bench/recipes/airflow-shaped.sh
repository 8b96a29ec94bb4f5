#!/bin/sh
# bench/recipes/airflow-shaped.sh: the shell script a person would write for
# bench/recipes/airflow-shaped.lua: each step checked first, done only when
# its check fails. The same checks as provision's: the folder, the compose
# file's SHA-256, the three folders, .env's exact content, the stack's
# containers running and healthy. .env holds the same bytes as provision writes.
#   sh airflow-shaped.sh DIR URL SHA256 IMAGE PROJECT
set -eu
dir=$1 url=$2 sha=$3 image=$4 project=$5
[ -d "$dir" ] || mkdir -p "$dir"
if ! echo "$sha  $dir/docker-compose.yaml" | sha256sum -c --status 2>/dev/null; then
    curl -fsS -o "$dir/docker-compose.yaml.tmp" "$url"
    echo "$sha  $dir/docker-compose.yaml.tmp" | sha256sum -c --status
    mv "$dir/docker-compose.yaml.tmp" "$dir/docker-compose.yaml"
fi
for d in dags logs plugins; do [ -d "$dir/$d" ] || mkdir -p "$dir/$d"; done
env="# Written by provision: changes here are overwritten on the next run.
AIRFLOW_GID=0
AIRFLOW_UID=0
STACK_IMAGE=$image"
if [ "$(cat "$dir/.env" 2>/dev/null)" != "$env" ]; then
    (umask 077; printf '%s\n' "$env" > "$dir/.env")
fi
status=$(docker ps -a --filter "label=com.docker.compose.project=$project" --format '{{.Label "com.docker.compose.service"}} {{.Status}}' | sort)
case "$status" in
    "scheduler Up"*"
webserver Up"*"(healthy)") ;;
    *) (cd "$dir" && docker-compose -p "$project" up -d)
       until docker ps --filter "label=com.docker.compose.project=$project" --filter health=healthy -q | grep -q .; do sleep 0.1; done ;;
esac
