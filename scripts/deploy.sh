#!/usr/bin/env bash
# deploy.sh: verify, then apply deploy/terraform with the image given by digest.
# IMAGE is the digest reference; without it, `make publish` is run and its last line
# is used. An image that `make verify` rejects is refused unless ALLOW_UNSIGNED=1.
# TF_VAR_project and TF_VAR_domain (or a terraform.tfvars) say where; Terraform
# asks for any that are missing and shows the plan before it changes anything.
set -euo pipefail
cd "$(dirname "$0")/.."

# TERRAFORM_BIN replaces the pinned terraform (the end-to-end test records the call
# with it instead of reaching Google Cloud).
terraform() {
  if [ -n "${TERRAFORM_BIN:-}" ]; then
    "$TERRAFORM_BIN" -chdir=deploy/terraform "$@"
  else
    go tool -modfile=tools/terraform/go.mod terraform -chdir=deploy/terraform "$@"
  fi
}

image=${IMAGE:-}
if [ -z "$image" ]; then
  case "${KO_DOCKER_REPO:-}" in
  "" | localhost:* | 127.0.0.1:*)
    echo "deploy: set IMAGE=NAME@sha256:..., or KO_DOCKER_REPO to an Artifact Registry repository" >&2
    echo "        (REGION-docker.pkg.dev/PROJECT/REPOSITORY) so that make publish can push there first;" >&2
    echo "        Cloud Run cannot pull from a registry on this machine." >&2
    exit 1
    ;;
  esac
  echo "deploy: no IMAGE given; running make publish" >&2
  image=$(make --no-print-directory publish | tail -n 1)
fi
case "$image" in
*@sha256:*) ;;
*)
  echo "deploy: IMAGE=$image is not a digest reference (NAME@sha256:...); deploy by digest, not by tag" >&2
  exit 1
  ;;
esac

# Deploy nothing that make verify refuses, unless told to.
if ! IMAGE=$image scripts/verify.sh; then
  if [ "${ALLOW_UNSIGNED:-}" != 1 ]; then
    echo "deploy: refusing $image: make verify rejects it (above). Sign it (make sign), or set ALLOW_UNSIGNED=1 to deploy it anyway." >&2
    exit 1
  fi
  cat >&2 <<WARN
deploy: ******************************************************************
deploy: WARNING: ALLOW_UNSIGNED=1: deploying $image
deploy: although make verify rejects it. Nobody has vouched for what runs.
deploy: ******************************************************************
WARN
fi

echo "deploy: $image" >&2
terraform init -input=false
terraform apply -var "image=$image"
terraform output
