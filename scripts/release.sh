#!/usr/bin/env bash
# release.sh: create a Cloud Deploy release of IMAGE (NAME@sha256:DIGEST), which the
# pipeline then takes to the canary region, analyses step by step, promotes to the
# other regions after the bake, or rolls back by itself (RELEASES.md). It is what CI
# runs after publish, sign and verify; from a laptop, `make release IMAGE=...`.
# `release.sh wait` (make release-wait RELEASE=...) only waits for a release's rollouts.
#
# An image that make verify rejects is refused unless ALLOW_UNSIGNED=1. Where the
# pipeline is comes from DELIVERY_PIPELINE, DELIVERY_REGION and RELEASE_STAGING_DIR,
# or, when they are unset, from deploy/terraform's outputs on this machine.
# RELEASE names the release (default: r-, the digest's first digits and the minute,
# shortened to fit); a release of that name that exists already, of the same image, is
# not created again, and with RELEASE_ONCE=1 (CI: one release per commit) not of any
# image. WAIT=1 then waits, for a release that existed too, until the rollouts it has
# so far have ended: the first one; the promotion's comes after the bake. A failed
# gcloud call while waiting is said and tried again.
# It needs gcloud on PATH, logged in (gcloud auth login) as someone who may create
# releases in the pipeline (RELEASES.md, "The roles"); the tests put a gcloud that
# records its calls first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cosign.sh
source scripts/cosign.sh

# Where the pipeline is: the environment, or Terraform's outputs.
terraform() {
  if [ -n "${TERRAFORM_BIN:-}" ]; then
    "$TERRAFORM_BIN" "$@"
  else
    go tool -modfile=tools/terraform/go.mod terraform "$@"
  fi
}
# output prints Terraform's output $1, or fails. With no state at all, `output -raw`
# prints a warning ("No outputs found") and succeeds; `output -json NAME` fails.
output() {
  terraform -chdir=deploy/terraform output -json "$1" >/dev/null 2>&1 &&
    terraform -chdir=deploy/terraform output -raw "$1" 2>/dev/null
}
pipeline=${DELIVERY_PIPELINE:-$(output delivery_pipeline || true)}
region=${DELIVERY_REGION:-$(output delivery_region || true)}
where=(--delivery-pipeline="$pipeline" --region="$region")

# wait_for_rollouts waits until every rollout release $1 has so far has ended,
# printing each rollout's state when it changes, and fails if one did not succeed.
# A rollout's canary steps are analysed for analysis_minutes each, so this takes a
# while. A rollout that does not exist yet (the promotion after the bake) is not
# waited for: run it again once it does.
# A gcloud call that fails (a network error, an expired token) is said and tried again
# at the next poll, until the timeout.
wait_for_rollouts() {
  local release=$1 timeout=${WAIT_TIMEOUT:-3600} poll=${WAIT_POLL:-20} start=$SECONDS said="" listed states
  [[ "$timeout" =~ ^[0-9]+$ ]] || die "WAIT_TIMEOUT=$timeout: want a number of seconds"
  [[ "$poll" =~ ^[0-9]+$ ]] || die "WAIT_POLL=$poll: want a number of seconds"
  echo "release: waiting for the rollouts of $release (at most ${timeout}s; WAIT_TIMEOUT to change)" >&2
  while :; do
    if ! listed=$(gcloud deploy rollouts list --release="$release" "${where[@]}" --format='value(targetId,state)'); then
      echo "release: $((SECONDS - start))s  could not list the rollouts (gcloud, above); asking again in ${poll}s" >&2
    else
      states=$(sort <<<"$listed")
      if [ "$states" != "$said" ]; then
        printf '%s\n' "$states" | sed "s/^/release: $((SECONDS - start))s  /" >&2
        said=$states
      fi
      if [ -n "$states" ] && ! grep -qvE '[[:space:]](SUCCEEDED|FAILED|CANCELLED|HALTED)$' <<<"$states"; then
        grep -qvE '[[:space:]]SUCCEEDED$' <<<"$states" && die "a rollout of $release did not succeed (above): gcloud deploy rollouts list --release=$release ${where[*]}"
        echo "release: every rollout of $release succeeded" >&2
        return 0
      fi
    fi
    [ $((SECONDS - start)) -lt "$timeout" ] || die "the rollouts of $release had not ended after ${timeout}s (above)"
    sleep "$poll"
  done
}

if [ "${1:-}" = wait ]; then
  [ -n "${RELEASE:-}" ] || die "set RELEASE=NAME, the release to wait for"
  if [ -z "$pipeline" ] || [ -z "$region" ]; then
    die "cannot tell where the pipeline is: set DELIVERY_PIPELINE and DELIVERY_REGION, or run make deploy on this machine first"
  fi
  wait_for_rollouts "$RELEASE"
  exit 0
fi

require_digest
staging=${RELEASE_STAGING_DIR:-$(output release_staging_dir || true)}
for v in pipeline region staging; do
  if [ -z "${!v}" ]; then
    die "cannot tell where the pipeline is: set DELIVERY_PIPELINE, DELIVERY_REGION and RELEASE_STAGING_DIR (deploy/terraform's outputs delivery_pipeline, delivery_region and release_staging_dir), or run make deploy on this machine first"
  fi
done

# The release's name. gcloud names a release's first rollout RELEASE-to-TARGET-0001
# (ROLLOUT_ID_TEMPLATE in the Cloud SDK's command_lib/deploy/rollout_util.py) and has
# no flag to name it otherwise, and a rollout's name, like a release's, is at most 63
# characters; too long, and the release exists but its rollout fails. deploy/terraform
# computes, from every target of the pipeline, how long a release name may be
# (output release_name_max_length) and refuses targets that leave less than
# min_release_name below. A RELEASE no longer than that fits every pipeline Terraform
# accepts, so its pipeline is not asked (CI's commit-SHA: no Terraform to build).
min_release_name=24
if [ -z "${RELEASE_NAME_MAX:-}" ] && [ -n "${RELEASE:-}" ] && [ "${#RELEASE}" -le "$min_release_name" ]; then
  max=$min_release_name
else
  max=${RELEASE_NAME_MAX:-$(output release_name_max_length || true)}
  max=${max:-$min_release_name}
fi
[[ "$max" =~ ^[0-9]+$ ]] || die "RELEASE_NAME_MAX=$max: want a number"
digest=${IMAGE##*@sha256:}
if [ -n "${RELEASE:-}" ]; then
  name=$RELEASE
  [ "${#name}" -le "$max" ] ||
    die "RELEASE=$name has ${#name} characters, at most $max here: gcloud names its first rollout $name-to-TARGET-0001, and a rollout's name may not pass 63 characters with this pipeline's longest target (or, without deploy/terraform's output, the shortest room Terraform allows)"
else
  # As much of the digest as fits (7 to 12 digits), then the minute (UTC). The
  # release's name needs no pipeline's in it: it is one of the pipeline's releases.
  when=$(date -u +%y%m%d%H%M)
  keep=$((max - ${#when} - 3)) # r-, a hyphen, the minute
  [ "$keep" -ge 7 ] ||
    die "the default release name r-${digest:0:7}-$when does not fit in $max characters (this pipeline's longest target): set RELEASE to a shorter name"
  name=r-${digest:0:$((keep < 12 ? keep : 12))}-$when
fi
[[ "$name" =~ ^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$ ]] ||
  die "RELEASE=$name: a release name is lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen"

# One release per name. CI names a release after its commit and sets RELEASE_ONCE=1,
# so that running the workflow again does not release the commit twice, even when
# the rebuilt image differs (a newer base image under the same tag).
# Only NOT_FOUND means there is no such release ("ERROR: (gcloud.deploy.releases.
# describe) NOT_FOUND: Resource '...' was not found"); any other failure (no login,
# no permission, the network) is not an answer, and is said as gcloud said it.
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
if existing=$(gcloud deploy releases describe "$name" "${where[@]}" --format='value(description)' 2>"$dir/describe"); then
  if [ "$existing" != "$IMAGE" ] && [ "${RELEASE_ONCE:-}" != 1 ]; then
    die "release $name exists already, of ${existing:-another image}, not $IMAGE: choose another RELEASE"
  fi
  echo "release: $name exists already, of ${existing:-an image it does not name}: nothing to create" >&2
  if [ "${WAIT:-}" = 1 ]; then
    wait_for_rollouts "$name"
  fi
  exit 0
elif ! grep -q 'NOT_FOUND' "$dir/describe"; then
  cat "$dir/describe" >&2
  die "cannot tell whether release $name exists: gcloud deploy releases describe failed (above)"
fi

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

# The spec with the verified image in place of its ko:// reference: what
# `ko resolve -f deploy/service.yaml` does, without building the image again.
reference='image: ko://github.com/example/hello'
n=$(grep -c -- "$reference\$" deploy/service.yaml || true)
[ "$n" = 1 ] || die "deploy/service.yaml has '$reference' $n times, want once"
sed "s|${reference//./\\.}\$|image: $IMAGE|" deploy/service.yaml >"$dir/service.yaml"

echo "release: creating release $name of $IMAGE in pipeline $pipeline ($region)" >&2
gcloud deploy releases create "$name" "${where[@]}" \
  --from-run-manifest="$dir/service.yaml" \
  --gcs-source-staging-dir="$staging" \
  --description="$IMAGE"
cat >&2 <<DONE
release: created $name. It reaches the canary region first, then the others after the bake.
release: watch it:   make release-wait RELEASE=$name
release:             gcloud deploy rollouts list --release=$name ${where[*]}
release: stop it and put a target back on its last good release (RELEASES.md, 'Stopping a release'):
release:             gcloud deploy targets rollback TARGET ${where[*]}
DONE
if [ "${WAIT:-}" = 1 ]; then
  wait_for_rollouts "$name"
fi
