#!/usr/bin/env bash
# local-registry.sh start|stop: the registry on localhost:5000 that `make publish`
# pushes to when KO_DOCKER_REPO is not set. `start` does nothing if one answers
# already; otherwise it starts Debian's docker-registry (the CNCF distribution
# registry) or, failing that, a registry:2 container, and says which.
set -euo pipefail

addr=127.0.0.1:5000
dir=${XDG_CACHE_HOME:-$HOME/.cache}/hello-registry

answers() { curl -fsS -o /dev/null --max-time 2 "http://$addr/v2/" 2>/dev/null; }

start() {
  if answers; then
    return 0
  fi
  if command -v docker-registry >/dev/null; then
    mkdir -p "$dir/data"
    cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $addr
YAML
    nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 50); do
      answers && break
      sleep 0.1
    done
    answers || { echo "local-registry: docker-registry did not start; see $dir/registry.log" >&2; exit 1; }
    echo "local-registry: started docker-registry on localhost:5000 (pid $(cat "$dir/pid"), data in $dir/data; stop it with: make registry-stop)" >&2
  elif docker info >/dev/null 2>&1; then
    docker run -d --name hello-registry -p "$addr:5000" registry:2 >/dev/null
    echo "local-registry: started container hello-registry (registry:2) on localhost:5000; stop it with: make registry-stop" >&2
  else
    cat >&2 <<MSG
local-registry: nothing answers on localhost:5000, and there is neither docker-registry
nor a Docker engine here to start a registry with. Either push to a real registry:
  export KO_DOCKER_REPO=europe-west1-docker.pkg.dev/PROJECT/REPOSITORY
or install one: apt-get install docker-registry (Debian, Ubuntu), or start Docker.
MSG
    exit 1
  fi
}

stop() {
  if [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null; then
    rm -f "$dir/pid"
    echo "local-registry: stopped docker-registry" >&2
  elif docker rm -f hello-registry >/dev/null 2>&1; then
    echo "local-registry: removed container hello-registry" >&2
  else
    echo "local-registry: no registry started by this script is running" >&2
  fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
