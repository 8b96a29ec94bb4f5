#!/bin/bash
# provision facts (issue 18): what the checks know of this machine, as text
# and as one JSON event, each fact compared with what the system's own tools
# say; no Docker engine is a fact too (exit 0); bad use is exit 2; with
# Compose's detection cached, it starts no process.
. "$ROOT/tests/lib.sh"
export XDG_CACHE_HOME="$SANDBOX/cache"
mkdir -m 700 "$XDG_CACHE_HOME"

run "$P" facts
expect "facts: exit 0, every fact on its line" \
    eval '[ $RC = 0 ] && for k in os kernel hostname user cpus memory disk init docker compose provision; do has "$OUT" "^$k " || exit 1; done'
. /etc/os-release
expect "os: os-release's name, id and version" has "$OUT" "^os        $PRETTY_NAME ($ID $VERSION_ID)$"
expect "kernel: uname -r and -m" has "$OUT" "^kernel    $(uname -r) $(uname -m)$"
expect "hostname, user" eval 'has "$OUT" "^hostname  $(hostname)$" && has "$OUT" "^user      $(id -un) (uid $(id -u), gid $(id -g))$"'
expect "cpus: as nproc" has "$OUT" "^cpus      $(nproc)$"
expect "init: PID 1's name" has "$OUT" "^init      $(cat /proc/1/comm)"

run "$P" facts --json
J="$SANDBOX/facts.json"; printf '%s\n' "$OUT" > "$J"
py() { python3 -c "import json,sys; f=json.load(open('$J')); $1"; }
expect "--json: one line, one facts event" eval '[ $RC = 0 ] && [ "$(printf "%s\n" "$OUT" | wc -l)" = 1 ] && [ "$(py "print(f[\"event\"])")" = facts ]'
expect "--json memory.total: /proc/meminfo's MemTotal in bytes" \
    eval '[ "$(py "print(f[\"memory\"][\"total\"])")" = "$(( $(awk "/^MemTotal:/ { print \$2 }" /proc/meminfo) * 1024 ))" ]'
avail=$(df -B1 --output=avail . | tail -1)
expect "--json disk.free here: as df says (within 1 %)" \
    eval 'py "d=f[\"disk\"]; sys.exit(0 if d[\"path\"]==\"$(pwd -P)\" and abs(d[\"free\"]-$avail) <= $avail/100 else 1)"'
if docker info > /dev/null 2>&1; then
    expect "--json docker: the engine's version, API version and swarm state" \
        eval '[ "$(py "d=f[\"docker\"]; print(d[\"engine\"], d[\"api\"], d[\"swarm\"].split()[0])")" = "$(docker version -f "{{.Server.Version}} {{.Server.APIVersion}}") $(docker info -f "{{.Swarm.LocalNodeState}}")" ]'
    want=$(docker compose version --short 2>/dev/null || docker-compose version --short)
    expect "--json compose: the version Compose gives (without a packaging suffix)" eval '[ "$(py "print(f[\"compose\"][\"version\"])")" = "$(printf "%s" "${want#v}" | sed "s/[-+].*//")" ]'
else
    fail "--json docker" "no Docker engine answers here (tests/run starts one)"
fi

run env DOCKER_HOST=unix:///nonexistent/docker.sock "$P" facts
expect "no engine: a fact, said, exit 0" \
    eval '[ $RC = 0 ] && has "$OUT" "^docker    none: no Docker engine answers at /nonexistent/docker.sock"'

run strace -f -qq -e trace=execve -o "$SANDBOX/st" "$P" facts
expect "Compose's version cached: facts starts no process" \
    eval '[ $RC = 0 ] && has "$OUT" "^compose   docker" && [ "$(grep -c "execve(" "$SANDBOX/st")" = 1 ]'

for args in "facts site.lua" "facts -e a=1" "facts --host h" "facts --only x"; do
    run "$P" $args
    expect "$args: exit 2, said" \
        eval '[ $RC = 2 ] && [ "$ERR" = "provision: facts takes no recipe, -e, step choice or hosts: it reports this machine" ]'
done
run "$P" help verbs
expect "help verbs names facts" has "$OUT" "^  facts "
