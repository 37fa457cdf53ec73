#!/usr/bin/env bash
# sign.sh: sign IMAGE (NAME@sha256:DIGEST) with cosign and attest the SPDX SBOM ko
# published beside it.
#
# With COSIGN_KEY (a cosign key file; COSIGN_PASSWORD from the environment): no
# transparency log and no network beyond the registry, for a registry on your own
# machine. Without it: keyless, with the ambient OIDC identity (in GitHub Actions,
# the workflow's token, given by `permissions: id-token: write`); the certificate and
# signature are recorded in Sigstore's public transparency log.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cosign.sh
source scripts/cosign.sh

require_digest
read -r -a registry <<<"$(registry_flags)"
flags=("${registry[@]}")
if [ -n "${COSIGN_KEY:-}" ]; then
  [ -r "$COSIGN_KEY" ] || die "COSIGN_KEY=$COSIGN_KEY: no such key file (make one with: go tool -modfile=tools/cosign/go.mod cosign generate-key-pair)"
  flags+=(--key "$COSIGN_KEY" --use-signing-config=false --tlog-upload=false)
  how="with the key $COSIGN_KEY, no transparency log"
else
  how="keyless, with this machine's OIDC identity"
fi

sbom=$(mktemp)
trap 'rm -f "$sbom"' EXIT
echo "sign: fetching the SBOM ko published for $IMAGE" >&2
cosign download sbom "${registry[@]}" "$IMAGE" >"$sbom" ||
  die "no SBOM found for $IMAGE (make publish has ko push one beside the image)"

echo "sign: signing $IMAGE ($how)" >&2
cosign sign --yes "${flags[@]}" "$IMAGE"
echo "sign: attesting its SBOM (spdxjson)" >&2
cosign attest --yes "${flags[@]}" --type spdxjson --predicate "$sbom" "$IMAGE"
echo "sign: signed $IMAGE and attested its SBOM ($how)" >&2
