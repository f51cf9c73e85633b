#!/usr/bin/env bash
# The fallback default dataset, for machines without ../shared/datasets/ml100k-mm: MovieLens-100K as
# shipped in the `recbole` 1.2.1 wheel on PyPI (ratings, titles, years, genres; no posters, no plots),
# converted by `omakase import --format recbole` into a dataset directory (README.md § Dataset format).
#
#   data/ml-100k/items.jsonl, data/ml-100k/interactions.csv     (or $OMAKASE_ML100K)
#
# The wheel is fetched with `pip download --no-deps` (never installed) into data-cache/wheels/ (or
# $OMAKASE_DATA_CACHE/wheels) and checked against its sha256; only
# recbole/dataset_example/ml-100k/ml-100k.{inter,item} are taken out of it (Python's zipfile).
#
# Idempotent: <out>/.fetched records the wheel's sha256 and the sha256 of both output files, and is
# written last. When it matches, nothing is downloaded or converted. A cached wheel with the right
# sha256 is reused. The conversion runs in a temporary folder that is moved into place, so a crash
# never leaves a half-written dataset. Prints the dataset directory on stdout (logs go to stderr).
#
# Environment: OMAKASE_ML100K (output folder), OMAKASE_DATA_CACHE (wheel cache), OMAKASE_WHEELS (a
# folder to take the wheel from before asking PyPI), OMAKASE_BIN (an `omakase` binary; default
# `cargo run`), PYTHON (default python3), CARGO (default cargo).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${OMAKASE_ML100K:-$root/data/ml-100k}
cache=${OMAKASE_DATA_CACHE:-$root/data-cache}/wheels
python=${PYTHON:-python3}
cargo=${CARGO:-cargo}

requirement="recbole==1.2.1"
wheel_sha=9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407
inside=recbole/dataset_example/ml-100k
files=(items.jsonl interactions.csv)

say() { printf 'fetch-ml100k: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

sha_of() { sha256sum <"$1" | cut -d' ' -f1; }

# Whether $out holds a complete conversion of this wheel.
up_to_date() {
    local record="$out/.fetched"
    [[ -f $record ]] || return 1
    [[ $(head -n 1 "$record") == "# wheel sha256 $wheel_sha" ]] || return 1
    (cd "$out" && tail -n +2 "$record" | sha256sum --check --strict --status - 2>/dev/null)
}

if up_to_date; then
    say "up to date: $out"
    echo "$out"
    exit 0
fi

mkdir -p "$cache" "$(dirname "$out")"
# Left by a run that was killed.
rm -rf "$(dirname "$out")"/.ml-100k.scratch.*
scratch=$(mktemp -d "$(dirname "$out")/.ml-100k.scratch.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# The wheel: from the cache, from $OMAKASE_WHEELS, or from PyPI (then kept in the cache).
wheel=""
for candidate in "$cache"/recbole-1.2.1-*.whl ${OMAKASE_WHEELS:+"$OMAKASE_WHEELS"/*.whl}; do
    if [[ -f $candidate && $(sha_of "$candidate") == "$wheel_sha" ]]; then
        wheel=$candidate
        say "using $wheel"
        break
    fi
done
if [[ -z $wheel ]]; then
    say "downloading $requirement"
    "$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$scratch/download" "$requirement" >&2
    downloaded=("$scratch/download"/*.whl)
    [[ ${#downloaded[@]} -eq 1 && -f ${downloaded[0]} ]] || die "expected one wheel for $requirement"
    got=$(sha_of "${downloaded[0]}")
    [[ $got == "$wheel_sha" ]] || die "$(basename "${downloaded[0]}"): sha256 $got, expected $wheel_sha"
    wheel="$cache/$(basename "${downloaded[0]}")"
    mv -f "${downloaded[0]}" "$wheel"
fi

# Only the two atomic files leave the wheel.
"$python" - "$wheel" "$inside" "$scratch/source" <<'PY'
import sys, zipfile, pathlib
wheel, inside, dest = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
dest.mkdir(parents=True)
with zipfile.ZipFile(wheel) as archive:
    for name in ("ml-100k.inter", "ml-100k.item"):
        (dest / name).write_bytes(archive.read(f"{inside}/{name}"))
PY

if [[ -n ${OMAKASE_BIN:-} ]]; then
    omakase=("$OMAKASE_BIN")
else
    omakase=("$cargo" run --quiet --manifest-path "$root/Cargo.toml" --bin omakase --)
fi
"${omakase[@]}" import --format recbole \
    --inter "$scratch/source/ml-100k.inter" --item "$scratch/source/ml-100k.item" \
    --out "$scratch/dataset" >&2 || die "omakase import failed"

{
    echo "# wheel sha256 $wheel_sha"
    (cd "$scratch/dataset" && sha256sum "${files[@]}")
} >"$scratch/dataset/.fetched"

# Swap the finished folder in.
if [[ -e $out ]]; then mv "$out" "$scratch/old"; fi
mv "$scratch/dataset" "$out"
say "converted ML-100K into $out"
echo "$out"
