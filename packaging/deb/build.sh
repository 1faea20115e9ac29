#!/usr/bin/env bash
# Build a .deb of the frozen app for the Debian-based office desktops (统信 UOS, 麒麟, Debian, Ubuntu):
#   packaging/deb/build.sh build/dist/gridman build/gridman_VERSION_amd64.deb VERSION
# The app goes under /opt/gridman; /usr/bin/gridman runs the console program (CLI, and the GUI
# with no command); a desktop entry and an icon appear in the menu. Each user's data lives in
# their own ~/.local/share/gridman: removing the package leaves it.
set -euo pipefail
dist=$1 out=$2 version=$3
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/DEBIAN" "$stage/opt" "$stage/usr/bin" "$stage/usr/share/applications" \
         "$stage/usr/share/icons/hicolor/256x256/apps"
cp -a "$dist" "$stage/opt/gridman"
ln -s /opt/gridman/gridman-cli "$stage/usr/bin/gridman"
install -m 0644 "$here/gridman.desktop" "$stage/usr/share/applications/gridman.desktop"
install -m 0644 "$here/../gridman.png" "$stage/usr/share/icons/hicolor/256x256/apps/gridman.png"
size=$(du -sk "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" "$here/control" > "$stage/DEBIAN/control"
chmod 0755 "$stage/DEBIAN"
mkdir -p "$(dirname "$out")"
fakeroot dpkg-deb --build -Zgzip "$stage" "$out" >/dev/null
echo "$out"
