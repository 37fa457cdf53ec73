#!/usr/bin/env bash
# verify.sh: check that IMAGE (NAME@sha256:DIGEST) is signed, and its SPDX SBOM
# attested, by whom it should be; print what was verified, or why not.
#
# With COSIGN_PUBLIC_KEY: against that key, without a transparency log (images
# signed with make sign COSIGN_KEY=...). Otherwise keyless: the certificate must
# name this repository's publish workflow (.github/workflows/ci.yml) on main or on a
# v* tag, issued to GitHub Actions, and be in Sigstore's transparency log.
#   CERT_IDENTITY_REGEXP  the workflow identity (default: from GITHUB_REPOSITORY,
#                         else from the git remote origin)
#   CERT_OIDC_ISSUER      default https://token.actions.githubusercontent.com
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cosign.sh
source scripts/cosign.sh

require_digest
read -r -a flags <<<"$(registry_flags)"
if [ -n "${COSIGN_PUBLIC_KEY:-}" ]; then
  [ -r "$COSIGN_PUBLIC_KEY" ] || die "COSIGN_PUBLIC_KEY=$COSIGN_PUBLIC_KEY: no such file"
  flags+=(--key "$COSIGN_PUBLIC_KEY" --insecure-ignore-tlog)
  signer="the key $COSIGN_PUBLIC_KEY"
else
  if [ -z "${CERT_IDENTITY_REGEXP:-}" ]; then
    repo=${GITHUB_REPOSITORY:-}
    if [ -z "$repo" ]; then
      remote=$(git remote get-url origin 2>/dev/null || true)
      [[ "$remote" =~ github\.com[:/]([^/]+/[^/]+)$ ]] && repo=${BASH_REMATCH[1]%.git}
    fi
    [ -n "$repo" ] || die "cannot tell which repository's workflow must have signed $IMAGE: set GITHUB_REPOSITORY=OWNER/REPO or CERT_IDENTITY_REGEXP, or COSIGN_PUBLIC_KEY for an image signed with a key"
    CERT_IDENTITY_REGEXP="^https://github\\.com/${repo//./\\.}/\\.github/workflows/ci\\.yml@refs/(heads/main|tags/v.+)\$"
  fi
  issuer=${CERT_OIDC_ISSUER:-https://token.actions.githubusercontent.com}
  flags+=(--certificate-identity-regexp "$CERT_IDENTITY_REGEXP" --certificate-oidc-issuer "$issuer")
  signer="an identity matching $CERT_IDENTITY_REGEXP, issued by $issuer"
fi

# explain turns cosign's error output into a sentence a person can act on.
explain() {
  local what=$1 out=$2
  case "$out" in
  *"no signatures found"* | *"no matching signatures"*"not found"* | *"no attestations found"*)
    echo "$IMAGE has no $what: it is not signed (make sign signs it)" ;;
  *"connection refused"* | *"no such host"* | *"i/o timeout"* | *"dial tcp"* | *"TLS handshake"*)
    echo "cannot reach the registry of $IMAGE to check its $what" ;;
  *"UNAUTHORIZED"* | *"DENIED"* | *"401"* | *"403"*)
    echo "the registry of $IMAGE refused to show its $what: log in first (ko login, or gcloud auth configure-docker)" ;;
  *"MANIFEST_UNKNOWN"* | *"NAME_UNKNOWN"*)
    echo "the registry has no image $IMAGE" ;;
  *)
    echo "$IMAGE has a $what, but none made by $signer" ;;
  esac
}

if ! out=$(cosign verify "${flags[@]}" "$IMAGE" 2>&1); then
  echo "verify: FAILED: $(explain signature "$out")" >&2
  echo "verify: cosign said: $(grep -m1 '^Error:' <<<"$out" || tail -n1 <<<"$out")" >&2
  exit 1
fi
echo "verify: signature of $IMAGE by $signer: ok"

if ! out=$(cosign verify-attestation "${flags[@]}" --type spdxjson "$IMAGE" 2>&1); then
  echo "verify: FAILED: $(explain "SBOM attestation" "$out")" >&2
  echo "verify: cosign said: $(grep -m1 '^Error:' <<<"$out" || tail -n1 <<<"$out")" >&2
  exit 1
fi
# The attestation is an in-toto statement, base64 in the envelope's payload, whose
# predicate is the SPDX document.
statement=$(grep -o '"payload":"[^"]*"' <<<"$out" | head -n1 | cut -d'"' -f4 | base64 -d 2>/dev/null || true)
packages=$(grep -o '"name":"[^"]*"' <<<"$statement" | cut -d'"' -f4 | grep -c / || true)
echo "verify: SBOM attestation (SPDX) of $IMAGE by $signer: ok, $packages Go packages and modules named$(grep -q 'github.com/go-chi/chi/v5' <<<"$statement" && echo ', chi among them')"
