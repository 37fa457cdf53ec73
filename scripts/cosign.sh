# shellcheck shell=bash
# cosign.sh: what sign.sh and verify.sh share; sourced, not run.

# cosign is the pinned cosign (tools/cosign). The first use compiles it, which
# takes minutes; after that it comes from Go's build cache.
cosign() { go tool -modfile=tools/cosign/go.mod cosign "$@"; }

die() {
  echo "$0: $*" >&2
  exit 1
}

# require_digest checks that IMAGE names an image by digest: a tag can be moved to
# another image after it was signed, a digest cannot.
require_digest() {
  case "${IMAGE:-}" in
  "") die "set IMAGE=NAME@sha256:DIGEST (the last line of make publish)" ;;
  *@sha256:*)
    [[ "${IMAGE##*@sha256:}" =~ ^[0-9a-f]{64}$ ]] || die "IMAGE=$IMAGE: the digest must be 64 lowercase hex digits"
    ;;
  *) die "IMAGE=$IMAGE is a tag, not a digest: a tag can be moved to another image after it was signed; give NAME@sha256:DIGEST (the last line of make publish)" ;;
  esac
}

# registry_flags prints the flags for IMAGE's registry: a registry on this machine
# may speak plain HTTP, as the one make publish starts does.
registry_flags() {
  case "$IMAGE" in
  localhost:* | localhost/* | 127.0.0.1:* | 127.0.0.1/*) echo --allow-http-registry ;;
  esac
}
