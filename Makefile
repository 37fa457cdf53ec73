# The front door: `make help` lists every target.
SHELL := bash
.DEFAULT_GOAL := help

GO ?= go
# Tools (ko, staticcheck) are pinned in their own module so that go.mod lists only
# what the service imports.
TOOL := $(GO) tool -modfile=tools/go.mod
KO := $(TOOL) ko

# Where `make publish` pushes. In production an Artifact Registry repository:
#   KO_DOCKER_REPO=europe-west1-docker.pkg.dev/PROJECT/REPOSITORY
# (gcr.io stopped accepting pushes in March 2025). The default is a registry on this
# machine, which `make publish` starts if none answers there.
KO_DOCKER_REPO ?= localhost:5000
export KO_DOCKER_REPO
# The image tag and the version the binary reports.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
export VERSION

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## Run the service on localhost:8080 (PORT, REGION, ... from the environment).
	$(GO) run .

.PHONY: test
test: ## Vet, then run every test with the race detector.
	$(GO) vet ./...
	$(GO) test -race ./...

.PHONY: lint
lint: ## Check formatting (gofmt), go vet and staticcheck.
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(TOOL) staticcheck ./...
	$(GO) -C e2e vet ./...
	cd e2e && $(GO) tool -modfile=../tools/go.mod staticcheck ./...

.PHONY: publish
publish: ## Build the image with ko, push it to KO_DOCKER_REPO as hello:VERSION and :latest; the last line is NAME@sha256:DIGEST.
	@case "$(KO_DOCKER_REPO)" in localhost:5000|localhost:5000/*) scripts/local-registry.sh start ;; esac
	$(KO) build --base-import-paths --tags '$(VERSION),latest' .

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
