package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// testSigning proves make sign, make verify and make release's check against the
// registry image was published to, with key pairs made here: no transparency log
// and no network beyond the registry. published is image@sha256:..., already in
// the registry with ko's SBOM beside it.
func testSigning(t *testing.T, reg *registry, env []string, image, published string, digestRef *regexp.Regexp) {
	keys := t.TempDir()
	env = append(slices.Clone(env), "COSIGN_PASSWORD="+randomHex(t, 8))
	for _, k := range []string{"signer", "stranger"} {
		cmd := exec.Command("go", "tool", "-modfile=tools/cosign/go.mod", "cosign", "generate-key-pair", "--output-key-prefix", filepath.Join(keys, k))
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
		}
	}
	key, pub, strangerKey := filepath.Join(keys, "signer.key"), filepath.Join(keys, "signer.pub"), filepath.Join(keys, "stranger.key")
	with := func(vars ...string) []string { return append(slices.Clone(env), vars...) }

	// verify runs make verify and returns its whole output.
	verify := func(t *testing.T, ref, pubKey string) (string, error) {
		t.Helper()
		stdout, stderr, err := makeTargetSplit(t, with("IMAGE="+ref, "COSIGN_PUBLIC_KEY="+pubKey), "verify")
		return stdout + stderr, err
	}
	wantFailure := func(t *testing.T, out string, err error, want string) {
		t.Helper()
		if err == nil {
			t.Fatalf("make verify passed, want a failure; output:\n%s", out)
		}
		if !strings.Contains(out, want) {
			t.Errorf("make verify said:\n%s\nwant it to say %q", out, want)
		}
	}

	t.Run("an unsigned image fails", func(t *testing.T) {
		out, err := verify(t, published, pub)
		wantFailure(t, out, err, "it is not signed")
	})

	t.Run("sign, then verify, passes and names the SBOM's packages", func(t *testing.T) {
		stdout, stderr, err := makeTargetSplit(t, with("IMAGE="+published, "COSIGN_KEY="+key), "sign")
		if err != nil {
			t.Fatalf("make sign: %v\n%s%s", err, stdout, stderr)
		}
		out, err := verify(t, published, pub)
		if err != nil {
			t.Fatalf("make verify of the signed image: %v\n%s", err, out)
		}
		for _, want := range []string{"signature of " + published + " by the key " + pub + ": ok", "SBOM attestation (SPDX)", "chi among them"} {
			if !strings.Contains(out, want) {
				t.Errorf("make verify said:\n%s\nwant %q", out, want)
			}
		}
	})

	t.Run("an image given by tag is refused", func(t *testing.T) {
		out, err := verify(t, image+":latest", pub)
		wantFailure(t, out, err, "is a tag, not a digest")
	})

	t.Run("an unreachable registry fails", func(t *testing.T) {
		elsewhere := freeAddr(t) + published[strings.Index(published, "/"):]
		out, err := verify(t, elsewhere, pub)
		wantFailure(t, out, err, "cannot reach the registry")
	})

	t.Run("sign and verify with a key against a plain-HTTP registry on this machine", func(t *testing.T) {
		plain := reg.copyTo(t, published, startPlainRegistry(t))
		stdout, stderr, err := makeTargetSplit(t, with("IMAGE="+plain, "COSIGN_KEY="+key), "sign")
		if err != nil {
			t.Fatalf("make sign %s: %v\n%s%s", plain, err, stdout, stderr)
		}
		if out, err := verify(t, plain, pub); err != nil || !strings.Contains(out, "chi among them") {
			t.Errorf("make verify %s: %v\n%s", plain, err, out)
		}
	})

	// Another image pushed under the same tags: the signature stays with the
	// first image's digest, and the tag now names an image nobody signed.
	other := publish(t, with("VERSION=e2e-2"), digestRef)
	if other == published {
		t.Fatalf("a publish with another VERSION gave the same digest %s", other)
	}
	t.Run("another image under the same tag is not signed", func(t *testing.T) {
		out, err := verify(t, other, pub)
		wantFailure(t, out, err, "it is not signed")
		if out, err := verify(t, published, pub); err != nil {
			t.Errorf("the first image no longer verifies after the tag moved: %v\n%s", err, out)
		}
	})

	t.Run("a signature made with another key fails", func(t *testing.T) {
		stdout, stderr, err := makeTargetSplit(t, with("IMAGE="+other, "COSIGN_KEY="+strangerKey), "sign")
		if err != nil {
			t.Fatalf("make sign with the stranger's key: %v\n%s%s", err, stdout, stderr)
		}
		out, err := verify(t, other, pub)
		wantFailure(t, out, err, "none made by the key "+pub)
	})

	// make release runs make verify first; gcloud is replaced by a script that
	// records its arguments and the manifest it was given, since Google Cloud
	// cannot be reached from here.
	calls := t.TempDir()
	fake := filepath.Join(t.TempDir(), "gcloud")
	writeFile(t, fake, []byte(`#!/bin/sh
# No release exists yet: gcloud's describe fails as Cloud Deploy's NOT_FOUND does.
[ "$1 $2 $3" = "deploy releases describe" ] && { echo "ERROR: (gcloud.deploy.releases.describe) NOT_FOUND: Resource '$4' was not found" >&2; exit 1; }
echo "$@" >> `+calls+`/args
for a in "$@"; do
  case $a in --from-run-manifest=*) cp "${a#*=}" `+calls+`/service.yaml ;; esac
done
`))
	os.Chmod(fake, 0o755)
	// Found on PATH before any real gcloud, as make release finds gcloud.
	fakeFirst := "PATH=" + filepath.Dir(fake) + string(os.PathListSeparator) + os.Getenv("PATH")
	where := []string{"DELIVERY_PIPELINE=hello", "DELIVERY_REGION=europe-west1", "RELEASE_STAGING_DIR=gs://p-hello-releases/source"}
	release := func(t *testing.T, vars ...string) (out string, released bool, err error) {
		t.Helper()
		os.Remove(filepath.Join(calls, "args"))
		os.Remove(filepath.Join(calls, "service.yaml"))
		stdout, stderr, err := makeTargetSplit(t, with(append(append(vars, where...), fakeFirst, "COSIGN_PUBLIC_KEY="+pub)...), "release")
		_, statErr := os.Stat(filepath.Join(calls, "args"))
		return stdout + stderr, statErr == nil, err
	}
	t.Run("make release refuses an image make verify rejects", func(t *testing.T) {
		out, released, err := release(t, "IMAGE="+other)
		if err == nil || released {
			t.Fatalf("make release of an unsigned image: %v, gcloud ran: %v; want a refusal before gcloud; output:\n%s", err, released, out)
		}
		if !strings.Contains(out, "refusing "+other) {
			t.Errorf("make release said:\n%s\nwant it to say why it refused", out)
		}
	})
	t.Run("make release refuses an image given by tag", func(t *testing.T) {
		out, released, err := release(t, "IMAGE="+image+":latest", "ALLOW_UNSIGNED=1")
		if err == nil || released || !strings.Contains(out, "is a tag, not a digest") {
			t.Fatalf("make release of a tag: %v, gcloud ran: %v; output:\n%s", err, released, out)
		}
	})
	t.Run("make release with ALLOW_UNSIGNED=1 releases it, loudly", func(t *testing.T) {
		out, released, err := release(t, "IMAGE="+other, "ALLOW_UNSIGNED=1")
		if err != nil || !released {
			t.Fatalf("make release ALLOW_UNSIGNED=1: %v, gcloud ran: %v; output:\n%s", err, released, out)
		}
		if !strings.Contains(out, "WARNING: ALLOW_UNSIGNED=1") {
			t.Errorf("make release ALLOW_UNSIGNED=1 said:\n%s\nwant a warning", out)
		}
	})
	t.Run("make release of a signed image creates a release of that digest", func(t *testing.T) {
		out, released, err := release(t, "IMAGE="+published, "RELEASE=hello-e2e-1")
		if err != nil || !released || strings.Contains(out, "WARNING") {
			t.Fatalf("make release of the signed image: %v, gcloud ran: %v; output:\n%s", err, released, out)
		}
		args, _ := os.ReadFile(filepath.Join(calls, "args"))
		for _, want := range []string{"deploy releases create hello-e2e-1 ", "--delivery-pipeline=hello", "--region=europe-west1", "--from-run-manifest=", "--gcs-source-staging-dir=gs://p-hello-releases/source"} {
			if !strings.Contains(string(args), want) {
				t.Errorf("gcloud was called with %q, want %q in it", args, want)
			}
		}
		manifest, _ := os.ReadFile(filepath.Join(calls, "service.yaml"))
		if !strings.Contains(string(manifest), "image: "+published+"\n") || strings.Contains(string(manifest), "image: ko://") {
			t.Errorf("the manifest released does not name %s in place of the ko:// reference:\n%s", published, manifest)
		}
		spec, _ := os.ReadFile(filepath.Join(repoRoot, "deploy", "service.yaml"))
		if got, want := strings.Count(string(manifest), "\n"), strings.Count(string(spec), "\n"); got != want {
			t.Errorf("the manifest released has %d lines, deploy/service.yaml %d: only the image may change", got, want)
		}
	})
	t.Run("make release without the pipeline's whereabouts says what to set", func(t *testing.T) {
		stdout, stderr, err := makeTargetSplit(t, with("IMAGE="+published, "COSIGN_PUBLIC_KEY="+pub, fakeFirst, "TERRAFORM_BIN=false"), "release")
		if err == nil || !strings.Contains(stdout+stderr, "set DELIVERY_PIPELINE, DELIVERY_REGION and RELEASE_STAGING_DIR") {
			t.Errorf("make release with nowhere to release: %v; output:\n%s%s", err, stdout, stderr)
		}
	})

	// make deploy applies the infrastructure only: images go through make release.
	ran := filepath.Join(t.TempDir(), "terraform-ran")
	terraform := filepath.Join(t.TempDir(), "terraform")
	writeFile(t, terraform, []byte("#!/bin/sh\necho \"$@\" >> "+ran+"\n"))
	os.Chmod(terraform, 0o755)
	t.Run("make deploy with an IMAGE points at make release", func(t *testing.T) {
		os.Remove(ran)
		stdout, stderr, err := makeTargetSplit(t, with("IMAGE="+published, "TERRAFORM_BIN="+terraform), "deploy")
		if _, statErr := os.Stat(ran); err == nil || statErr == nil || !strings.Contains(stdout+stderr, "make release IMAGE="+published) {
			t.Errorf("make deploy IMAGE=...: %v, terraform ran: %v; output:\n%s%s", err, statErr == nil, stdout, stderr)
		}
	})
	t.Run("make deploy applies deploy/terraform", func(t *testing.T) {
		os.Remove(ran)
		stdout, stderr, err := makeTargetSplit(t, with("TERRAFORM_BIN="+terraform), "deploy")
		calls, _ := os.ReadFile(ran)
		if err != nil || string(calls) != "-chdir=deploy/terraform init -input=false\n-chdir=deploy/terraform apply\n-chdir=deploy/terraform output\n" {
			t.Errorf("make deploy: %v, terraform was called:\n%s\noutput:\n%s%s", err, calls, stdout, stderr)
		}
	})
}
