#!/usr/bin/env bash
# release.sh: create a Cloud Deploy release of IMAGE (NAME@sha256:DIGEST), which the
# pipeline then takes to the canary region, analyses step by step, promotes to the
# other regions after the bake, or rolls back by itself (RELEASES.md). It is what CI
# runs after publish, sign and verify; from a laptop, `make release IMAGE=...`.
#
# An image that make verify rejects is refused unless ALLOW_UNSIGNED=1. Where the
# pipeline is comes from DELIVERY_PIPELINE, DELIVERY_REGION and RELEASE_STAGING_DIR,
# or, when they are unset, from deploy/terraform's outputs on this machine.
# RELEASE names the release (default: the pipeline's name, the digest's first 12
# digits and the time). GCLOUD_BIN replaces gcloud (the end-to-end test records the
# call). It needs gcloud, logged in (gcloud auth login) as someone who may create
# releases in the pipeline (RELEASES.md, "The roles").
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cosign.sh
source scripts/cosign.sh

gcloud() { "${GCLOUD_BIN:-gcloud}" "$@"; }

require_digest

# Release nothing make verify refuses, unless told to.
if ! scripts/verify.sh; then
  if [ "${ALLOW_UNSIGNED:-}" != 1 ]; then
    die "refusing $IMAGE: make verify rejects it (above). Sign it (make sign), or set ALLOW_UNSIGNED=1 to release it anyway."
  fi
  cat >&2 <<WARN
release: ******************************************************************
release: WARNING: ALLOW_UNSIGNED=1: releasing $IMAGE
release: although make verify rejects it. Nobody has vouched for what runs.
release: ******************************************************************
WARN
fi

# Where the pipeline is: the environment, or Terraform's outputs.
output() {
  if [ -n "${TERRAFORM_BIN:-}" ]; then
    "$TERRAFORM_BIN" -chdir=deploy/terraform output -raw "$1" 2>/dev/null
  else
    go tool -modfile=tools/terraform/go.mod terraform -chdir=deploy/terraform output -raw "$1" 2>/dev/null
  fi
}
pipeline=${DELIVERY_PIPELINE:-$(output delivery_pipeline || true)}
region=${DELIVERY_REGION:-$(output delivery_region || true)}
staging=${RELEASE_STAGING_DIR:-$(output release_staging_dir || true)}
for v in pipeline region staging; do
  if [ -z "${!v}" ]; then
    die "cannot tell where the pipeline is: set DELIVERY_PIPELINE, DELIVERY_REGION and RELEASE_STAGING_DIR (deploy/terraform's outputs delivery_pipeline, delivery_region and release_staging_dir), or run make deploy on this machine first"
  fi
done

# The spec with the verified image in place of its ko:// reference: what
# `ko resolve -f deploy/service.yaml` does, without building the image again.
reference='image: ko://github.com/example/hello'
n=$(grep -c -- "$reference\$" deploy/service.yaml || true)
[ "$n" = 1 ] || die "deploy/service.yaml has '$reference' $n times, want once"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|${reference//./\\.}\$|image: $IMAGE|" deploy/service.yaml >"$dir/service.yaml"

digest=${IMAGE##*@sha256:}
name=${RELEASE:-$pipeline-${digest:0:12}-$(date -u +%Y%m%d-%H%M%S)}
[[ "$name" =~ ^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$ ]] ||
  die "RELEASE=$name: a release name is lower-case letters, digits and hyphens, at most 63, starting with a letter"

echo "release: creating release $name of $IMAGE in pipeline $pipeline ($region)" >&2
gcloud deploy releases create "$name" \
  --delivery-pipeline="$pipeline" \
  --region="$region" \
  --from-run-manifest="$dir/service.yaml" \
  --gcs-source-staging-dir="$staging" \
  --description="$IMAGE"
cat >&2 <<DONE
release: created $name. It reaches the canary region first, then the others after the bake.
release: watch it:   gcloud deploy releases describe $name --delivery-pipeline=$pipeline --region=$region
release:             gcloud deploy rollouts list --release=$name --delivery-pipeline=$pipeline --region=$region
release: stop it and put a target back on its last good release (RELEASES.md, 'Stopping a release'):
release:             gcloud deploy targets rollback TARGET --delivery-pipeline=$pipeline --region=$region
DONE
