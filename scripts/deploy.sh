#!/usr/bin/env bash
# deploy.sh: apply deploy/terraform: the accounts, the release pipeline and its
# alert policies, and the load balancer. Images are not deployed here: make release
# creates a release, which Cloud Deploy takes to every region (RELEASES.md).
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

if [ -n "${IMAGE:-}" ]; then
  echo "deploy: make deploy applies the infrastructure and takes no IMAGE (unset it); release $IMAGE with: make release IMAGE=$IMAGE" >&2
  exit 1
fi

terraform init -input=false
terraform apply
terraform output
echo "deploy: applied. Release an image with: make release IMAGE=NAME@sha256:... (on a new project: RELEASES.md, 'The first deployment')" >&2
