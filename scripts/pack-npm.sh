#!/usr/bin/env bash
# The npm package of the <omakase-recs> element (www/README.md, "The npm package"): the element
# (widget/), the runtime client and its worker (runtime/), the wasm modules (pkg/, from ./build.sh
# wasm), TypeScript declarations (www/widget/types.d.ts and those tsc derives from the JSDoc types),
# custom-elements.json and package.json (www/package/, version from Cargo.toml), packed by `npm pack`.
#   bash scripts/pack-npm.sh [OUT]     stages OUT/package (default out/npm) and writes OUT/omakase-recs-VERSION.tgz
# Prints the tarball's path on the last line. Needs node + npm and tests/browser's pinned typescript
# (npm ci there when missing). Offline: nothing is fetched.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/npm}
stage="$out/package"

for f in pkg/omakase.js pkg/omakase.d.ts pkg/omakase_bg.wasm pkg/encoders/omakase_encoders.js; do
  if [ ! -f "$f" ]; then
    echo "pack-npm: $f not found: build the browser package first (./build.sh wasm)" >&2
    exit 2
  fi
done
if [ ! -x tests/browser/node_modules/.bin/tsc ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

rm -rf "$stage"
mkdir -p "$stage/widget" "$stage/runtime" "$stage/pkg"
cp www/widget/*.js www/widget/types.d.ts "$stage/widget/"
cp www/runtime/*.js "$stage/runtime/"
cp pkg/omakase.js pkg/omakase.d.ts pkg/omakase_bg.wasm pkg/omakase_bg.wasm.d.ts "$stage/pkg/"
cp -r pkg/snippets "$stage/pkg/"
mkdir -p "$stage/pkg/encoders"
cp pkg/encoders/omakase_encoders.js pkg/encoders/omakase_encoders.d.ts pkg/encoders/omakase_encoders_bg.wasm "$stage/pkg/encoders/"
[ -d pkg/encoders/snippets ] && cp -r pkg/encoders/snippets "$stage/pkg/encoders/"
cp www/package/custom-elements.json www/package/README.md "$stage/"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
node -e '
  const fs = require("fs");
  const [from, to, version] = process.argv.slice(1);
  const pkg = JSON.parse(fs.readFileSync(from, "utf8"));
  pkg.version = version;
  fs.writeFileSync(to, JSON.stringify(pkg, null, 2) + "\n");
' www/package/package.json "$stage/package.json" "$version"

# Declarations from the JSDoc types; the repository's ../../pkg/ is the package's ../pkg/.
tests/browser/node_modules/.bin/tsc -p www/tsconfig.package.json --outDir "$stage"
sed -i 's#\.\./\.\./pkg/#../pkg/#g' "$stage"/widget/*.d.ts "$stage"/runtime/*.d.ts

tarball=$(cd "$stage" && npm pack --silent --pack-destination .. 2>/dev/null | tail -n 1)
printf 'pack-npm: %s/%s: %s bytes packed, %s files, %s bytes unpacked\n' "$out" "$tarball" "$(wc -c < "$out/$tarball")" \
  "$(find "$stage" -type f | wc -l)" "$(du -sb "$stage" | cut -f1)" >&2
echo "$out/$tarball"
