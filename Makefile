# Tessera: set-up, build, test and demo in one place.
#   make demo   install what is missing, build (release), run the pipeline on the bundled sample
#   make test   install what is missing, run the Swift tests and the Python interop tests
SHELL := /bin/bash
SWIFT ?= swift
PYTHON ?= python3
VENV := .venv
APT_PACKAGES := libhdf5-dev libfftw3-dev zlib1g-dev libdeflate-dev libisal-dev libzstd-dev libblosc-dev libpng-dev libxml2 pkg-config python3-venv \
  openmpi-bin slurm-wlm munge
# What the interop tests need besides: an X server and the X, OpenGL and xcb libraries napari's Qt
# wheel loads (napari draws its canvas with OpenGL, which Qt's offscreen platform lacks).
TEST_APT_PACKAGES := xvfb libdbus-1-3 libgl1 libglx-mesa0 libgl1-mesa-dri libfontconfig1 libx11-xcb1 libglib2.0-0 \
  libxkbcommon-x11-0 libxcb-glx0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
  libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1
# The release build targets the CPU it is built on when that has AVX2 and the rest of Haswell's
# instruction set (fusion is 10–15 % faster; the output is bit-identical), else baseline x86-64.
# PORTABLE=1 builds for baseline x86-64 (a binary to copy to other machines); TARGET_CPU=... picks
# a CPU (haswell, skylake, znver3, ...). Swift's runtime and Foundation are linked statically, so the
# binary runs without a Swift installation and starts faster.
HOST_CPU := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | grep -w avx2 | grep -w fma | grep -w bmi2 \
  | grep -w movbe | grep -qw f16c && echo haswell)
TARGET_CPU ?= $(if $(PORTABLE),,$(HOST_CPU))
CPU_FLAGS := $(if $(TARGET_CPU),-Xswiftc -target-cpu -Xswiftc $(TARGET_CPU)) \
  $(if $(and $(TARGET_CPU),$(filter $(HOST_CPU),$(TARGET_CPU))),-Xswiftc -DTESSERA_HOST_CPU, \
  $(if $(TARGET_CPU),-Xswiftc -DTESSERA_CHOSEN_CPU))
RELEASE_BIN := .build/release/tessera
DEBUG_BIN := .build/debug/tessera
DEMO_OUT ?= demo-out

.PHONY: all deps deps-test venv build release test test-swift test-python fuzz demo lint format clean

all: build

# Install the Debian packages that are missing (needs root, or sudo).
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
endef

deps:
	$(call apt_install,$(APT_PACKAGES))

deps-test: deps
	$(call apt_install,$(TEST_APT_PACKAGES))

# Python environment for the interop tests (pinned versions).
$(VENV)/.installed: Tests/Interop/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r Tests/Interop/requirements.txt
	touch $@

venv: deps $(VENV)/.installed

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --static-swift-stdlib $(CPU_FLAGS)

test-swift: deps
	$(SWIFT) build
	$(SWIFT) test

test-python: deps-test venv
	$(SWIFT) build
	# A one-node SLURM cluster runs the generated sbatch scripts for real when this is root (CI).
	TESSERA_REAL_SLURM=$$([ "$$(id -u)" = 0 ] && command -v slurmctld >/dev/null && echo 1) \
	  TESSERA_BIN=$(abspath $(DEBUG_BIN)) $(VENV)/bin/python -m pytest -q Tests/Interop

# Seeded mutation fuzzing of every input parser, longer than in `swift test` (about 25 s here).
fuzz: deps
	TESSERA_FUZZ_TRIALS=5000 $(SWIFT) test --filter ParserFuzzTests

test: test-swift test-python fuzz

demo: release
	bash Datasets/demo.sh $(RELEASE_BIN) $(DEMO_OUT)

lint:
	$(SWIFT) format lint --strict -r Sources Tests Package.swift

format:
	$(SWIFT) format -i -r Sources Tests Package.swift

clean:
	rm -rf .build $(VENV) $(DEMO_OUT)
