#!/usr/bin/env bash
# Installs what swm needs on a fresh Debian (12) machine. Idempotent; needs root or sudo.
#   - build tools and libgdal-dev (for the `gdal` feature; GDAL 3.6)
#   - Mesa's lavapipe (software Vulkan) and the X11 libraries and Xvfb bevy's viewer needs
#   - Rust, if cargo is missing (rustup, stable)
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PKGS="build-essential pkg-config libgdal-dev gdal-bin curl ca-certificates mesa-vulkan-drivers libvulkan1 vulkan-tools xvfb libx11-dev libxkbcommon-dev libxcursor-dev libxrandr-dev libxi-dev libudev-dev"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
