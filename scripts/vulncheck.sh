#!/usr/bin/env bash
# vulncheck.sh: run govulncheck, pinned in tools/vulncheck/go.mod, with the pinned Go.
# Without BINARY it checks the service's source (every package of the root module);
# with BINARY=FILE it checks that compiled binary in binary mode (CI gives it the one
# extracted from the published image). It exits non-zero on a finding that affects
# the code or the binary, and prints govulncheck's report either way.
#
#   VULN_DB=https://vuln.go.dev  Go's public vulnerability database (the default)
#   VULN_DB=snapshot             the same database as of the golang.org/x/vulndb
#                                version pinned in tools/vulncheck/go.mod, served by the
#                                Go module proxy and indexed here, for machines that
#                                cannot reach vuln.go.dev. It knows no advisory newer
#                                than that version's date.
#   VULN_DB=file:///DIR          any database in govulncheck's format
set -euo pipefail
cd "$(dirname "$0")/.."

tool() { go tool -modfile=tools/vulncheck/go.mod "$@"; }
die() {
  echo "vulncheck: $*" >&2
  exit 2
}

db=${VULN_DB:-https://vuln.go.dev}
if [ "$db" = snapshot ]; then
  version=$(go -C tools/vulncheck list -m -f '{{.Version}}' golang.org/x/vulndb)
  dir=${XDG_CACHE_HOME:-$HOME/.cache}/hello-vulndb/$version
  if [ ! -f "$dir/index/db.json" ]; then
    go -C tools/vulncheck mod download golang.org/x/vulndb
    src=$(go -C tools/vulncheck list -m -f '{{.Dir}}' golang.org/x/vulndb)
    [ -d "$src/data/osv" ] || die "golang.org/x/vulndb $version has no data/osv directory"
    echo "vulncheck: indexing $(find "$src/data/osv" -name '*.json' | wc -l) advisories of golang.org/x/vulndb $version into $dir" >&2
    rm -rf "$dir.part"
    mkdir -p "$(dirname "$dir")"
    tool indexdb -vulns "$src/data/osv" -out "$dir.part"
    mv "$dir.part" "$dir"
  fi
  stamp=${version#v0.0.0-}
  echo "vulncheck: database snapshot golang.org/x/vulndb $version (advisories up to ${stamp:0:4}-${stamp:4:2}-${stamp:6:2})" >&2
  db=file://$dir
fi

if [ -n "${BINARY:-}" ]; then
  [ -f "$BINARY" ] || die "BINARY=$BINARY: no such file"
  echo "vulncheck: $BINARY, built by $(go version "$BINARY" | cut -d' ' -f2), against $db" >&2
  tool govulncheck -db "$db" -mode=binary "$BINARY"
else
  echo "vulncheck: the source (./...) with $(go env GOVERSION), against $db" >&2
  tool govulncheck -db "$db" ./...
fi
