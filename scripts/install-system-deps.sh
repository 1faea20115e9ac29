#!/usr/bin/env bash
# System packages gridman needs on Debian/Ubuntu: Qt's runtime libraries (xcb/EGL/fontconfig),
# CJK fonts for Chinese text, and the PostgreSQL server the tests start a throwaway cluster of.
# Installs only what is missing, only when run as root with apt-get; otherwise it says what to do.
set -euo pipefail

PKGS=(
  libegl1 libgl1 libglib2.0-0 libfontconfig1 libfreetype6 libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-randr0 libxcb-render-util0
  libxcb-image0 libxcb-xinerama0 libxcb-xkb1 libx11-xcb1
  fonts-noto-cjk
  postgresql locales
)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
else
  echo "install-system-deps: not a Debian-like system; install Qt 6 runtime libraries, a CJK font and PostgreSQL yourself." >&2
  exit 0
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: missing packages: ${missing[*]}" >&2
  echo "  run: sudo apt-get install ${missing[*]}" >&2
  exit 0
fi

echo "install-system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
