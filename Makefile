# The front door: `make help` lists every target.
SHELL := bash
.DEFAULT_GOAL := help

GO ?= go
# The Go that builds, tests and publishes everything is go.mod's toolchain line, the one
# place it is named. It is exported as GOTOOLCHAIN because a Go whose environment sets
# GOTOOLCHAIN=local (this project's CI machines do) ignores that line and builds with
# whatever version it is; the go command fetches the pinned one from the module proxy
# once. A user's Go, on the default GOTOOLCHAIN=auto, would switch to it by itself.
GOTOOLCHAIN := $(shell sed -n 's/^toolchain //p' go.mod)
export GOTOOLCHAIN
# Tools (ko, staticcheck) are pinned in their own module so that go.mod lists only
# what the service imports.
TOOL := $(GO) tool -modfile=tools/go.mod
KO := $(TOOL) ko
# actionlint and terraform need other versions of shared dependencies than ko, so
# each has a module of its own.
ACTIONLINT := $(GO) tool -modfile=tools/actionlint/go.mod actionlint
TERRAFORM := $(GO) tool -modfile=tools/terraform/go.mod terraform
TRIVY := $(GO) tool -modfile=tools/trivy/go.mod trivy

# Where `make publish` pushes. In production an Artifact Registry repository:
#   KO_DOCKER_REPO=europe-west1-docker.pkg.dev/PROJECT/REPOSITORY
# (gcr.io stopped accepting pushes in March 2025). The default is a registry on this
# machine, which `make publish` starts if none answers there.
KO_DOCKER_REPO ?= localhost:5000
export KO_DOCKER_REPO
# The image tag and the version the binary reports.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
export VERSION

.PHONY: toolchain
toolchain: ## Print the Go that builds everything (go.mod's toolchain line), for .ci/run and the workflow.
	@echo $(GOTOOLCHAIN)

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## Run the service on localhost:8080 (PORT, REGION, ... from the environment).
	$(GO) run .

.PHONY: test
test: ## Vet, then every test with the race detector (as root with haproxy, the fault harness's own tests too), the Terraform wiring test and the bench module's own.
	$(GO) vet ./...
	$(GO) test -race ./...
	$(GO) -C deploy test ./...
	$(GO) -C bench test ./...

# Every Go module: the service, and the ones kept apart so that its go.mod stays small.
MODULES := . e2e deploy bench

.PHONY: lint
lint: ## gofmt; go vet and staticcheck in every module; actionlint (workflows, with shellcheck); shellcheck (scripts); terraform fmt -check.
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	@for m in $(MODULES); do \
		echo "go vet, staticcheck: $$m"; \
		$(GO) -C $$m vet ./... || exit 1; \
		(cd $$m && $(GO) tool -modfile=$(CURDIR)/tools/go.mod staticcheck ./...) || exit 1; \
	done
	$(GO) vet -tags soak .
	$(ACTIONLINT)
	shellcheck -x scripts/*.sh .ci/run
	$(TERRAFORM) -chdir=deploy/terraform fmt -check -diff

.PHONY: vulncheck
vulncheck: ## govulncheck the source, or BINARY=FILE in binary mode; fails on a finding. VULN_DB=snapshot: Go's database offline, as pinned in tools/vulncheck.
	scripts/vulncheck.sh

.PHONY: scan
scan: ## trivy's offline configuration scan of deploy/terraform (embedded checks); fails on a HIGH or CRITICAL finding. The first run compiles trivy (minutes).
	$(TRIVY) config --skip-check-update --severity HIGH,CRITICAL --exit-code 1 deploy/terraform

.PHONY: publish
publish: ## Build the image with ko, push it to KO_DOCKER_REPO as hello:VERSION and :latest; the last line is NAME@sha256:DIGEST.
	@case "$(KO_DOCKER_REPO)" in localhost:5000|localhost:5000/*) scripts/local-registry.sh start ;; esac
	$(KO) build --base-import-paths --tags '$(VERSION),latest' .

.PHONY: publish-probe
publish-probe: ## Build cmd/probe's image with ko and push it as probe:VERSION; the last line is NAME@sha256:DIGEST, for deploy/terraform's probe_image (the releases' synthetic traffic).
	@case "$(KO_DOCKER_REPO)" in localhost:5000|localhost:5000/*) scripts/local-registry.sh start ;; esac
	$(KO) build --base-import-paths --tags '$(VERSION)' ./cmd/probe

.PHONY: image
image: ## Build the image without pushing, as an OCI layout in dist/oci.
	rm -rf dist/oci
	$(KO) build --base-import-paths --push=false --oci-layout-path dist/oci .

.PHONY: image-report
image-report: ## Print the binary size and each layer's compressed size (after make image).
	$(GO) -C e2e run ./cmd/imagereport -layout ../dist/oci

.PHONY: e2e
e2e: ## Publish to a real local registry (TLS, password), inspect the image, run it with runc.
	$(GO) -C e2e test -count=1 -v -timeout 20m ./...

.PHONY: registry-stop
registry-stop: ## Stop the local registry that make publish started.
	scripts/local-registry.sh stop

.PHONY: sign
sign: ## Sign IMAGE=NAME@sha256:... with cosign and attest its SBOM: keyless (CI), or COSIGN_KEY=cosign.key (COSIGN_PASSWORD from the environment).
	scripts/sign.sh

.PHONY: verify
verify: ## Verify IMAGE=NAME@sha256:...: signed by this repository's publish workflow (or COSIGN_PUBLIC_KEY=cosign.pub), SBOM attested.
	scripts/verify.sh

.PHONY: deploy
deploy: ## Apply deploy/terraform (accounts, release pipeline, alerts, load balancer); TF_VAR_project, TF_VAR_domain. For set-up and infrastructure changes.
	scripts/deploy.sh

.PHONY: release
release: ## Verify IMAGE=NAME@sha256:..., then release it through Cloud Deploy: canary region first, analysed, then the rest. ALLOW_UNSIGNED=1 releases what verify refuses; WAIT=1 then waits for its first rollout (the canary region's).
	scripts/release.sh

.PHONY: release-wait
release-wait: ## Wait until every rollout RELEASE=NAME has so far has ended, printing each one's state; fails if one did not succeed.
	scripts/release.sh wait

.PHONY: probe
probe: ## Probe a deployment: make probe URL=https://hello.example.com/ [PROBE_FLAGS="-n 500 -expect-region europe-west1"].
	@if [ -z "$(URL)" ]; then echo "make probe needs URL=https://your-domain/"; exit 2; fi
	$(GO) run ./cmd/probe -url '$(URL)' $(PROBE_FLAGS)

.PHONY: faults
faults: ## As root: the fault matrix (SIGTERM, SIGKILL, SIGSTOP, cut link, latency, loss) and the release rows behind HAProxy; writes FAILOVER.md and RELEASES.md. QUICK=1 for CI.
	$(GO) build -o bin/hello .
	$(GO) build -modfile=tools/toxiproxy/go.mod -o bin/toxiproxy github.com/Shopify/toxiproxy/v2/cmd/server
	$(GO) run ./cmd/faults -binary bin/hello -toxiproxy bin/toxiproxy -source . $(if $(QUICK),-quick)

.PHONY: bench
bench: image ## As root: hello against a well-written net/http service, bare net/http and the echo design, and start-ups as Cloud Run shapes them (binary, image under runc and runsc, beside bare net/http and the same padded to hello's size); writes BENCHMARKS.md (about 25 minutes; BENCH_FLAGS=-before=REV adds the service at REV).
	taskset -c 1 $(GO) -C bench run ./cmd/bench $(BENCH_FLAGS)

.PHONY: seed-base
seed-base: ## Push a stand-in for the distroless base to the local registry and print its name, for a machine that cannot pull gcr.io: KO_DEFAULTBASEIMAGE=$$(make -s seed-base) make bench.
	@scripts/local-registry.sh start >&2
	@$(GO) -C e2e run ./cmd/seedbase localhost:5000/base/static:nonroot

# FUZZTIME counts executions (Nx), not time: with a duration, the go1.26 toolchains
# can fail a target that found nothing with "context deadline exceeded" as the time
# runs out (go.dev/issue/75804, fixed in go1.27; docs/testing.md, "Fuzzing").
FUZZTIME ?= 1000000x
.PHONY: fuzz
fuzz: ## Fuzz the handler, the trace-header parsers and the configuration for FUZZTIME executions each (default 1000000x, about 40 s each here).
	@for target in FuzzServer FuzzTraceHeaders FuzzLoadConfig; do \
		echo "$(GO) test -run='^$$' -fuzz=^$$target\$$ -fuzztime=$(FUZZTIME) ."; \
		$(GO) test -run='^$$' -fuzz="^$$target\$$" -fuzztime=$(FUZZTIME) . || exit 1; \
	done

.PHONY: soak
soak: ## Load tests, without -race (it grows RSS): 1000 requests/s for SOAK_DURATION (default 60s) with no errors and nothing growing; SIGTERM under load; slow clients.
	$(GO) test -tags soak -run '^(TestSoak|TestShutdownUnderLoadAnswersEveryAcceptedRequest|TestSlowClientsAreCutOffWhileOthersAreServed)$$' -count=1 -v -timeout 15m .
