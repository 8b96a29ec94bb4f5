#!/bin/bash
# tests/cli/engine_url.sh: engine = URL on every resource that takes it
# (docker.engine, docker.image, compose.available, compose.up,
# compose.run_once, compose.down): each malformed URL is a load-time error
# (exit 2, the recipe's file:line, the exact message) before anything is
# done; well-formed ones load (`provision list`: nothing is reached).
. "$ROOT/tests/lib.sh"

FORMS='(unix:///path, tcp://host:port or ssh://[user@]host[:port])'
BAD=(
    "ftp://x|unknown scheme ftp:// $FORMS"
    "docker.sock|not a URL $FORMS"
    "tcp://h|no port (tcp://host:port)"
    "tcp://:2375|no host (tcp://host:port)"
    "tcp://h:0|port 0 is not 1-65535 (tcp://host:port)"
    "tcp://h:2375/v1|no path after host:port (tcp://host:port)"
    "ssh://|no host (ssh://[user@]host[:port])"
    "ssh://root@|no host (ssh://[user@]host[:port])"
    "ssh://h:99999|port 99999 is not 1-65535 (ssh://[user@]host[:port])"
    "ssh://h/var/run/docker.sock|no path after the host (ssh://[user@]host[:port])"
    "ssh://-oProxyCommand=touch|a host cannot start with '-'"
    "ssh://a b@h|no blanks or control characters in an engine URL"
    "ssh://root:pw@h|no password in an ssh:// URL (ssh uses your keys or agent)"
    "ssh://-l@h|not a user name: -l"
    "unix://|no socket path (unix:///path)"
    "unix://run/docker.sock|the socket path must be absolute (unix:///path)"
)
# each kind, as a recipe line (the engine goes where ENGINE is)
KINDS=(
    'check "c" { docker.engine { engine = ENGINE } }'
    'step "s" { docker.image { name = "x:1", engine = ENGINE } }'
    'check "c" { compose.available { engine = ENGINE } }'
    'step "s" { compose.up { project_dir = "./p", engine = ENGINE } }'
    'step "s" { compose.run_once { project_dir = "./p", service = "x", engine = ENGINE } }'
    'step "s" { compose.down { project_dir = "./p", engine = ENGINE } }'
)
mkdir -p p
for k in "${KINDS[@]}"; do
    kind=$(printf '%s' "$k" | grep -oE '(docker|compose)\.[a-z_]+')
    for b in "${BAD[@]}"; do
        url=${b%%|*} why=${b#*|}
        { echo 'recipe { name = "e" }'; printf '%s\n' "${k/ENGINE/\"$url\"}"; } > r.lua
        run "$P" plan r.lua
        want="provision: r.lua:2: $kind: engine \"$url\": $why"
        expect "$kind engine = \"$url\": exit 2, r.lua:2 and why" eval '[ $RC -eq 2 ] && [ "$ERR" = "$want" ] && [ -z "$OUT" ]'
    done
done

# the same on apply and teardown: nothing is reached, nothing recorded
printf 'recipe { name = "e" }\nstep "s" { compose.up { project_dir = "./p", engine = "tcp://h" } }\n' > r.lua
run "$P" r.lua
expect "apply with a bad engine URL: exit 2 before anything (no state written)" \
    eval '[ $RC -eq 2 ] && has "$ERR" "r.lua:2: compose.up: engine \"tcp://h\": no port" && [ ! -e .provision ]'
run "$P" teardown r.lua
expect "teardown with a bad engine URL: exit 2" test "$RC" = 2

# well-formed URLs load; nothing is reached by `list`
GOOD=("unix:///var/run/docker.sock" "tcp://127.0.0.1:2376" "tcp://[::1]:2375/" "tcp://docker.example:2375"
      "ssh://h" "ssh://deploy@h.example:2222" "ssh://root@[::1]:22" "")
for url in "${GOOD[@]}"; do
    {
        echo 'recipe { name = "e" }'
        i=0
        for k in "${KINDS[@]}"; do i=$((i + 1)); k=${k/\"c\"/\"c$i\"}; printf '%s\n' "${k/\"s\"/\"s$i\"}" | sed "s|ENGINE|\"$url\"|"; done
    } > r.lua
    run "$P" list r.lua
    expect "engine = \"$url\" loads on every kind (list: exit 0)" eval '[ $RC -eq 0 ] && [ -z "$ERR" ]'
done
