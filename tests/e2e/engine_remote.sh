#!/bin/bash
# End to end: engines by URL (issue 17), each in front of this machine's
# real engine, nothing mocked:
#   tcp:// with mutual TLS: a TLS endpoint (python3's ssl, a byte pump to
#     /var/run/docker.sock) with certificates made here by openssl (a CA,
#     the server's for IP 127.0.0.1, ours); DOCKER_TLS_VERIFY=1 and
#     DOCKER_CERT_PATH: docker.engine answers; another CA is refused with
#     a clear message; a missing key.pem is named;
#   ssh://: an sshd test host (tests/fixtures/sshd, --docker-socket) and a
#     recipe with docker.engine, docker.image and a busybox compose stack
#     through ssh://root@127.0.0.1:PORT: apply, a no-op (one ssh process
#     for all its API calls, under strace), teardown; nothing of the
#     tunnel left; ssh's own reason when the login is refused, the host
#     key is unknown, or the host has no engine socket.
# compose-matrix: run again with v1 (tests/run)
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/e2e/lib_docker.sh"
docker_require "engines by URL"

export XDG_CACHE_HOME="$SANDBOX/cache"   # the tunnels' folders: this test's own
mkdir -p "$XDG_CACHE_HOME" && chmod 0700 "$XDG_CACHE_HOME"

# ---- tcp:// with mutual TLS

if ! command -v python3 > /dev/null || ! command -v openssl > /dev/null; then
    fail "TLS endpoint" "python3 and openssl are needed (apt-get install python3 openssl)"
else
    C="$SANDBOX/tls"
    mkdir -p "$C/client" "$C/other" "$C/nokey" && chmod -R 0700 "$C"
    (
        cd "$C" || exit 1
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 2 -subj /CN=provision-test-ca &&
        openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr -subj /CN=127.0.0.1 &&
        printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext &&
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
            -extfile server.ext -out server.pem &&
        openssl req -newkey rsa:2048 -nodes -keyout client/key.pem -out client.csr -subj /CN=provision-test-client &&
        printf 'extendedKeyUsage=clientAuth\n' > client.ext &&
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
            -extfile client.ext -out client/cert.pem &&
        cp ca.pem client/ca.pem &&
        # another CA: the engine's certificate is not signed by it
        openssl req -x509 -newkey rsa:2048 -nodes -keyout other-key.pem -out other/ca.pem -days 2 -subj /CN=other-ca &&
        cp client/cert.pem client/key.pem other/ &&
        cp client/ca.pem client/cert.pem nokey/
    ) > "$SANDBOX/openssl.log" 2>&1 || { fail "TLS certificates" "$(tail -5 "$SANDBOX/openssl.log")"; exit 1; }
    cat > "$SANDBOX/tls_endpoint.py" <<'PY'
import socket, ssl, sys, threading
port_file, cert, key, ca, target = sys.argv[1:6]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.verify_mode = ssl.CERT_REQUIRED          # mutual TLS: a client certificate of this CA
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(16)
with open(port_file + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
import os; os.rename(port_file + ".tmp", port_file)
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
def serve(conn):
    try:
        s = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError):
        conn.close(); return
    u = socket.socket(socket.AF_UNIX)
    u.connect(target)
    threading.Thread(target=pump, args=(s, u), daemon=True).start()
    pump(u, s)
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
    python3 "$SANDBOX/tls_endpoint.py" "$SANDBOX/tls.port" "$C/server.pem" "$C/server-key.pem" "$C/ca.pem" \
        /var/run/docker.sock 2> "$SANDBOX/tls_endpoint.err" &
    tls_pid=$!
    cleanup_add "kill $tls_pid 2>/dev/null"
    for _ in $(seq 50); do [ -s "$SANDBOX/tls.port" ] && break; sleep 0.1; done
    TPORT=$(cat "$SANDBOX/tls.port" 2>/dev/null)
    cat > tls.lua <<'R'
recipe { name = "tls" }
local v = vars { engine = "" }
check "engine" { docker.engine { engine = v.engine, min_version = "20.10" } }
R
    run env DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH="$C/client" "$P" tls.lua -e engine="tcp://127.0.0.1:$TPORT"
    expect "tcp:// + DOCKER_TLS_VERIFY + DOCKER_CERT_PATH: the engine answers through mutual TLS" \
        eval '[ $RC -eq 0 ] && has "$OUT" "check engine *ok .*engine 2"'
    run env DOCKER_TLS_VERIFY= DOCKER_CERT_PATH="$C/client" "$P" tls.lua -e engine="tcp://127.0.0.1:$TPORT"
    expect "without DOCKER_TLS_VERIFY: plain HTTP, which the TLS endpoint does not answer (exit 1)" \
        eval '[ $RC -eq 1 ] && has "$OUT$ERR" "tcp://127.0.0.1:$TPORT"'
    run env DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH="$C/other" "$P" tls.lua -e engine="tcp://127.0.0.1:$TPORT"
    expect "another CA: refused, saying the engine is not the one ca.pem vouches for" \
        eval '[ $RC -eq 1 ] && has "$OUT$ERR" "the engine at tcp://127.0.0.1:$TPORT is not the one DOCKER_CERT_PATH.s $C/other/ca.pem vouches for"'
    run env DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH="$C/nokey" "$P" tls.lua -e engine="tcp://127.0.0.1:$TPORT"
    expect "a missing key.pem is named" \
        eval '[ $RC -eq 1 ] && has "$OUT$ERR" "DOCKER_CERT_PATH: $C/nokey/key.pem: No such file or directory"'
    run env DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH="$C/client" DOCKER_HOST="tcp://127.0.0.1:$TPORT" "$P" tls.lua
    expect "DOCKER_HOST=tcp:// with TLS is the default engine's URL too" test "$RC" = 0
fi

# ---- ssh://
. "$ROOT/tests/fixtures/sshd/hosts.sh"
ssh_hosts_start 1 --docker-socket || exit 1   # h1: the engine's socket bind-mounted
ssh_hosts_start 1 || exit 1                   # h2: no engine there
export PROVISION_SSH="ssh -F $SSH_CONFIG"
E1="ssh://root@127.0.0.1:$(ssh_host_port 1)"
E2="ssh://root@127.0.0.1:$(ssh_host_port 2)"

TAG="provision-test/busybox:remote$$"
PROJ="ptremote$$"
busybox_tar "$SANDBOX/rootfs.tar" || { fail "busybox root filesystem" "busybox-rootfs.sh failed"; exit 1; }
cleanup_add "docker image rm -f '$TAG' >/dev/null 2>&1"
mkdir -p "$PROJ"
cat > "$PROJ/docker-compose.yaml" <<Y
services:
  sleeper:
    image: $TAG
    stop_signal: SIGKILL
    command: ["sleep", "3600"]
Y
cleanup_add "docker-compose -p '$PROJ' -f '$SANDBOX/$PROJ/docker-compose.yaml' down -v >/dev/null 2>&1"
cat > remote.lua <<'R'
recipe { name = "remote" }
local v = vars { engine = "", dir = "", image = "", rootfs = "" }
check "engine" { docker.engine { engine = v.engine, min_version = "20.10" } }
check "compose" { compose.available { engine = v.engine } }
step "image" { docker.image { name = v.image, from_rootfs = v.rootfs, engine = v.engine } }
step "stack" { compose.up { project_dir = v.dir, engine = v.engine } }
R
RARGS=(-e "dir=$SANDBOX/$PROJ" -e "image=$TAG" -e "rootfs=$SANDBOX/rootfs.tar")

tunnels_left() {   # ssh processes of ours still forwarding, and folders of tunnels left
    ps -eo args | grep -F -- "$XDG_CACHE_HOME/provision/engines/" | grep -v grep
    ls -A "$XDG_CACHE_HOME/provision/engines/" 2>/dev/null
}

run "$P" remote.lua -e engine="$E1" "${RARGS[@]}"
expect "ssh://: apply imports the image and brings the stack up (exit 0, 2 changed)" \
    eval '[ $RC -eq 0 ] && has "$OUT" "changed=2 failed=0"'
expect "ssh://: the container runs on the engine behind the host" \
    test "$(docker ps -q --filter "label=com.docker.compose.project=$PROJ" --filter status=running | wc -l)" = 1
expect "ssh://: no ssh process and no tunnel folder left after the run" test -z "$(tunnels_left)"

strace -f -qq -e trace=execve,sendto,write -s 24 -o "$SANDBOX/trace" "$P" remote.lua -e engine="$E1" "${RARGS[@]}" \
    > "$SANDBOX/out2" 2>&1
RC=$?; OUT=$(cat "$SANDBOX/out2"); ERR=""
calls=$(grep -cE '(sendto|write)\([0-9]+, "(GET|POST|HEAD|DELETE) /' "$SANDBOX/trace")
sshs=$(grep -E 'execve\(' "$SANDBOX/trace" | grep -v ENOENT | grep -c '/ssh"')
execs=$(grep -E 'execve\(' "$SANDBOX/trace" | grep -vc ENOENT)
expect "ssh://: the re-run is a no-op (exit 0, all ok)" eval '[ $RC -eq 0 ] && has "$OUT" "ok=2 changed=0 failed=0"'
expect "ssh://: one ssh process for all $calls API calls of the no-op (saw $sshs ssh, $execs processes in all)" \
    eval '[ "$sshs" = 1 ] && [ "$execs" = 2 ] && [ "$calls" -ge 4 ]'
expect "ssh://: after the no-op, nothing of the tunnel left" test -z "$(tunnels_left)"

run "$P" plan remote.lua -e engine="$E1" "${RARGS[@]}"
expect "ssh://: plan against that engine: nothing to change (exit 0)" test "$RC" = 0

run "$P" teardown remote.lua -e engine="$E1" "${RARGS[@]}"
expect "ssh://: teardown takes the stack and the image down through the host" \
    eval '[ $RC -eq 0 ] && project_gone "$PROJ" && ! docker image inspect "$TAG" > /dev/null 2>&1'
expect "ssh://: after teardown, nothing of the tunnel left" test -z "$(tunnels_left)"

# ---- ssh:// failures: ssh's own reason, the host named
cat > ping.lua <<'R'
recipe { name = "ping" }
local v = vars { engine = "" }
check "engine" { docker.engine { engine = v.engine } }
R
run "$P" ping.lua -e engine="ssh://nobody@127.0.0.1:$(ssh_host_port 1)"
expect "ssh:// login refused: exit 1, the host and ssh's reason" \
    eval '[ $RC -eq 1 ] && has "$OUT$ERR" "ssh to nobody@127.0.0.1:$(ssh_host_port 1) failed: .*Permission denied"'
run env PROVISION_SSH="ssh -F $SSH_CONFIG -o UserKnownHostsFile=/dev/null" "$P" ping.lua -e engine="$E1"
expect "ssh:// host key unknown: exit 1, ssh's reason" \
    eval '[ $RC -eq 1 ] && has "$OUT$ERR" "ssh to root@127.0.0.1:$(ssh_host_port 1) failed: Host key verification failed"'
run "$P" ping.lua -e engine="$E2"
expect "ssh:// to a host with no engine socket: exit 1, says there is none there, ssh's words" \
    eval '[ $RC -eq 1 ] && has "$OUT$ERR" "root@127.0.0.1:$(ssh_host_port 2) has no Docker engine at /var/run/docker.sock: ssh says: .*open failed"'
expect "ssh:// failures: nothing of the tunnels left" test -z "$(tunnels_left)"
