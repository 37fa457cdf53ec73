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

// testSigning proves make sign, make verify and make deploy's check against the
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

	// make deploy runs make verify first; terraform is replaced by a script that
	// records that it ran, since Google Cloud cannot be reached from here.
	ran := filepath.Join(t.TempDir(), "terraform-ran")
	fake := filepath.Join(t.TempDir(), "terraform")
	writeFile(t, fake, []byte("#!/bin/sh\necho \"$@\" >> "+ran+"\n"))
	os.Chmod(fake, 0o755)
	deploy := func(t *testing.T, vars ...string) (out string, applied bool, err error) {
		t.Helper()
		os.Remove(ran)
		stdout, stderr, err := makeTargetSplit(t, with(append(vars, "TERRAFORM_BIN="+fake, "COSIGN_PUBLIC_KEY="+pub)...), "deploy")
		_, statErr := os.Stat(ran)
		return stdout + stderr, statErr == nil, err
	}
	t.Run("make deploy refuses an image make verify rejects", func(t *testing.T) {
		out, applied, err := deploy(t, "IMAGE="+other)
		if err == nil || applied {
			t.Fatalf("make deploy of an unsigned image: %v, terraform ran: %v; want a refusal before terraform; output:\n%s", err, applied, out)
		}
		if !strings.Contains(out, "refusing "+other) {
			t.Errorf("make deploy said:\n%s\nwant it to say why it refused", out)
		}
	})
	t.Run("make deploy with ALLOW_UNSIGNED=1 deploys it, loudly", func(t *testing.T) {
		out, applied, err := deploy(t, "IMAGE="+other, "ALLOW_UNSIGNED=1")
		if err != nil || !applied {
			t.Fatalf("make deploy ALLOW_UNSIGNED=1: %v, terraform ran: %v; output:\n%s", err, applied, out)
		}
		if !strings.Contains(out, "WARNING: ALLOW_UNSIGNED=1") {
			t.Errorf("make deploy ALLOW_UNSIGNED=1 said:\n%s\nwant a warning", out)
		}
	})
	t.Run("make deploy of a signed image goes ahead", func(t *testing.T) {
		out, applied, err := deploy(t, "IMAGE="+published)
		if err != nil || !applied || strings.Contains(out, "WARNING") {
			t.Fatalf("make deploy of the signed image: %v, terraform ran: %v; output:\n%s", err, applied, out)
		}
	})
}
