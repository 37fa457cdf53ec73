#!/usr/bin/env bash
# deploy.sh: apply deploy/terraform with the image given by digest. IMAGE is the
# digest reference; without it, `make publish` is run and its last line is used.
# TF_VAR_project and TF_VAR_domain (or a terraform.tfvars) say where; Terraform
# asks for any that are missing and shows the plan before it changes anything.
set -euo pipefail
cd "$(dirname "$0")/.."

terraform() { go tool -modfile=tools/terraform/go.mod terraform -chdir=deploy/terraform "$@"; }

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

echo "deploy: $image" >&2
terraform init -input=false
terraform apply -var "image=$image"
terraform output
