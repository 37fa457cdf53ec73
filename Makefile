# The front door: `make help` lists every target.
SHELL := bash
.DEFAULT_GOAL := help

GO ?= go
# Tools (ko, staticcheck) are pinned in their own module so that go.mod lists only
# what the service imports.
TOOL := $(GO) tool -modfile=tools/go.mod

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

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
