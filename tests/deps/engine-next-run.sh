#!/bin/sh
# tests/deps/engine-next-run.sh start|stop DIR: the newer Docker Engine of
# tests/deps/engine-next.sh, side by side with the system's: its own
# containerd (socket, root, state), dockerd with its own --data-root,
# --exec-root, pidfile and socket (DIR/docker.sock), its own default bridge
# (pvnextN, made here: with --bridge none, dockerd would delete the system
# engine's docker0), no iptables rules (those are the system engine's;
# Compose's own networks and published ports on 127.0.0.1 work without),
# its cgroups under docker-next. start prints the DOCKER_HOST to use once it
# answers; stop ends both by their own pids, removes the bridge, then DIR.
set -eu
ENGINE=${ENGINE_NEXT_DIR:-/usr/local/lib/provision-tests/engine-next}
cmd=${1:-}; dir=${2:-}
[ -n "$dir" ] || { echo "usage: engine-next-run.sh start|stop DIR" >&2; exit 2; }
case "$cmd" in
start)
    [ -x "$ENGINE/usr/sbin/dockerd" ] || { echo "no engine in $ENGINE (sh tests/deps/engine-next.sh)" >&2; exit 1; }
    mkdir -p "$dir/cd-root" "$dir/cd-state" "$dir/data" "$dir/exec"
    cat > "$dir/containerd.toml" <<T
version = 2
root = "$dir/cd-root"
state = "$dir/cd-state"
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
T
    # a bridge of its own, on a free name and 172.31.24N.1/24
    n=0
    while ip link show "pvnext$n" > /dev/null 2>&1; do n=$((n + 1)); done
    [ $n -lt 10 ] || { echo "engine-next-run.sh: pvnext0..9 all taken" >&2; exit 1; }
    ip link add "pvnext$n" type bridge && ip addr add "172.31.24$n.1/24" dev "pvnext$n" && ip link set "pvnext$n" up
    echo "pvnext$n" > "$dir/bridge"
    export PATH="$ENGINE/usr/bin:$ENGINE/usr/sbin:$PATH"
    containerd --config "$dir/containerd.toml" > "$dir/containerd.log" 2>&1 &
    echo $! > "$dir/containerd.pid"
    i=0; while [ ! -S "$dir/containerd.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    dockerd --containerd "$dir/containerd.sock" --data-root "$dir/data" --exec-root "$dir/exec" \
        --pidfile "$dir/dockerd.pid" -H "unix://$dir/docker.sock" --bridge "pvnext$n" --iptables=false \
        --ip6tables=false --cgroup-parent docker-next > "$dir/dockerd.log" 2>&1 &
    echo $! > "$dir/dockerd.run.pid"
    i=0
    until docker -H "unix://$dir/docker.sock" version > /dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -ge 120 ]; then echo "the newer engine did not answer in 60 s:" >&2; tail -5 "$dir/dockerd.log" >&2; exit 1; fi
        sleep 0.5
    done
    echo "unix://$dir/docker.sock"
    ;;
stop)
    for p in dockerd.run containerd; do
        [ -f "$dir/$p.pid" ] || continue
        pid=$(cat "$dir/$p.pid")
        kill "$pid" 2>/dev/null || continue
        i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 40 ]; do sleep 0.5; i=$((i + 1)); done
        kill -9 "$pid" 2>/dev/null || true
    done
    [ -f "$dir/bridge" ] && ip link del "$(cat "$dir/bridge")" 2>/dev/null
    rm -rf "$dir" 2>/dev/null || true
    ;;
*) echo "usage: engine-next-run.sh start|stop DIR" >&2; exit 2 ;;
esac
