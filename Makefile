.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

run: ## run the service on embedded defaults
	go run ./cmd/rehabrtc serve

build: ## build ./rehabrtc
	go build -o rehabrtc ./cmd/rehabrtc

test: ## every test (installs chromium, redis-server, node when missing)
	./scripts/test.sh

check: ## quick checks: gofmt, vet, short tests
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	go vet ./...
	cd bench && go vet ./...
	go test -short ./...

.PHONY: help run build test check
