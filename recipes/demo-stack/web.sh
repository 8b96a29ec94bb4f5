#!/bin/sh
# demo-stack web service: a tiny HTTP/1.1 server (busybox nc), shaped like
# Airflow's web server:
#   GET /health     JSON, no login: {"init":{"status":..},"worker":{"status":..,"latest_heartbeat":..}}
#   GET /api/hello  JSON, basic auth ($WEB_USER / $WEB_PASSWORD), else 401
#   GET /           a page, basic auth
# `web.sh serve` listens on 8080; nc runs `web.sh` once per connection.
if [ "${1:-}" = serve ]; then
  echo "demo web: listening on 8080"
  nc -ll -p 8080 -e /app/web.sh &
  child=$!
  trap 'kill "$child"; exit 0' TERM INT
  wait "$child"
  exit
fi
METHOD="" PATH_INFO="" AUTH=""
IFS=' ' read -r -t 10 METHOD PATH_INFO _ || exit 0
PATH_INFO=${PATH_INFO%%\?*}
while IFS= read -r -t 10 line; do
  line=${line%"$(printf '\r')"}
  [ -z "$line" ] && break
  case "$line" in [Aa]uthorization:\ Basic\ *) AUTH=$(printf %s "${line#*Basic }" | base64 -d 2>/dev/null) ;; esac
done
respond() { # STATUS TYPE BODY [HEADER]
  printf 'HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n' "$1" "$2" "${#3}"
  [ -n "${4:-}" ] && printf '%s\r\n' "$4"
  printf '\r\n%s' "$3"
}
authorized() { [ "$AUTH" = "$WEB_USER:$WEB_PASSWORD" ]; }
denied() {
  respond "401 Unauthorized" application/json '{"status":401,"title":"Unauthorized"}' 'WWW-Authenticate: Basic realm="demo"'
}
case "$PATH_INFO" in
  /health)
    init=unhealthy; [ -f /data/initialized ] && init=healthy
    worker=unhealthy beat=null
    if [ -f /data/worker-heartbeat ]; then
      beat="\"$(cat /data/worker-heartbeat)\""
      [ $(( $(date +%s) - $(stat -c %Y /data/worker-heartbeat) )) -le 15 ] && worker=healthy
    fi
    respond "200 OK" application/json "{\"init\":{\"status\":\"$init\"},\"worker\":{\"status\":\"$worker\",\"latest_heartbeat\":$beat}}" ;;
  /api/hello)
    if authorized; then respond "200 OK" application/json "{\"greeting\":\"$(cat /data/greeting 2>/dev/null)\",\"user\":\"$WEB_USER\"}"; else denied; fi ;;
  /)
    if authorized; then respond "200 OK" "text/html" "<html><body><h1>$(cat /data/greeting 2>/dev/null)</h1><p>provision demo stack</p></body></html>"; else denied; fi ;;
  *) respond "404 Not Found" application/json '{"status":404,"title":"Not Found"}' ;;
esac
