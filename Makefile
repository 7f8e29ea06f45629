# bainode: `make run` needs nothing but Go (it builds only the static bainode);
# `make test` does all its own setup on a fresh Debian 12 machine with Go (run
# it as root, or with sudo available, so that apt-get can install packages).

GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Only bainoded links dqlite (cgo, Debian's libdqlite 1.11); bainode stays static.
DQLITE_TAGS := libsqlite3
GOTEST_TIMEOUT ?= 80m
FUZZTIME ?= 15s

# Debian packages the tests and tools use:
#  cloud-init: `cloud-init schema` on rendered user-data
#  genisoimage (isoinfo), xorriso, mtools, dosfstools, util-linux: independent seed checks
#  qemu-*, ovmf, seabios, mmdebstrap, syslinux, extlinux, e2fsprogs: VM boots and the test base image
#  libdqlite-dev, libraft-dev, libuv1-dev, libsqlite3-dev, gcc: bainoded
#  shellcheck: the provisioning script and the verifier
#  sudo: the cloud-init stages sandbox (the host's root) runs the verifier's sudo check
#  dpkg-dev, apt: differential tests of bainode's Debian formats and resolver
#  busybox-static, kmod, cpio: the deploy environment and GPU stand-in modules
#  pxelinux, isolinux, syslinux-efi, grub-pc-bin, grub-efi-amd64-bin, grub-efi-amd64-signed,
#  shim-signed, debian-installer-12-netboot-amd64: real bootloaders and kernels for pxe/iso fixtures
APT_PACKAGES := cloud-init genisoimage xorriso mtools dosfstools util-linux \
	qemu-system-x86 qemu-utils ovmf seabios mmdebstrap syslinux syslinux-common extlinux \
	e2fsprogs fdisk libdqlite-dev libraft-dev libuv1-dev libsqlite3-dev gcc pkg-config shellcheck \
	ca-certificates dpkg-dev apt busybox-static kmod cpio pxelinux isolinux syslinux-efi \
	grub-pc-bin grub-efi-amd64-bin grub-efi-amd64-signed shim-signed debian-installer-12-netboot-amd64 \
	sudo systemd zstd
# Only `make bench` needs these: the tools a user would pick instead of bainode.
BENCH_PACKAGES := packer libguestfs-tools

# EXTRA_PACKAGES lets a target add packages to `make deps`.
.PHONY: all build bainoded run test deps vet unit fuzz bench clean FORCE

all: build

build: $(BIN)/bainode bainoded

# bainode is static pure Go: it needs nothing but Go.
$(BIN)/bainode: FORCE
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/bainode ./cmd/bainode

# bainoded links libdqlite (cgo): `make deps` installs it.
bainoded:
	CGO_ENABLED=1 $(GO) build -tags $(DQLITE_TAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/bainoded ./cmd/bainoded

# The main job on the built-in example site, offline: a directory of
# cloud-init files and a NoCloud seed per node under ./out. It builds only
# the static bainode, so Go is all it needs.
run: $(BIN)/bainode
	$(BIN)/bainode validate
	$(BIN)/bainode seed -o out
	@echo "seeds and cloud-init files are in ./out"

# deps installs the Debian packages that are missing, and nothing else.
deps:
	@missing=$$(for p in $(APT_PACKAGES) $(EXTRA_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

vet:
	$(GO) vet -tags $(DQLITE_TAGS) ./...

unit:
	$(GO) test -tags $(DQLITE_TAGS) -timeout $(GOTEST_TIMEOUT) ./...

# Short fuzz runs over the committed corpora.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./builder/spec
	$(GO) test -run '^$$' -fuzz '^FuzzCompareDebVersions$$' -fuzztime $(FUZZTIME) ./builder/fetch
	$(GO) test -run '^$$' -fuzz '^FuzzEncoders$$' -fuzztime $(FUZZTIME) ./builder/render
	@if ls builder/serve/*fuzz*_test.go >/dev/null 2>&1; then \
		$(GO) test -tags $(DQLITE_TAGS) -run '^$$' -fuzz '^FuzzHandler$$' -fuzztime $(FUZZTIME) ./builder/serve; fi

test: deps build vet unit fuzz

bench: build
	$(MAKE) deps EXTRA_PACKAGES='$(BENCH_PACKAGES)'
	bash scripts/bench.sh

FORCE:

clean:
	rm -rf $(BIN) out
