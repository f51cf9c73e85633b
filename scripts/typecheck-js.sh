#!/usr/bin/env bash
# Type-checks the shipped JS of www/ (JSDoc types, checkJs + strict; www/tsconfig.json) with the
# typescript pinned in tests/browser/package.json, then the npm package's declarations as a shop's
# TypeScript sees them (scripts/pack-npm.sh, installed into a fresh folder; tests/browser/types/).
# Nothing is emitted into the tree but out/npm; exits non-zero on a type error.
#   bash scripts/typecheck-js.sh
# Needs node + npm, and the wasm module's generated declarations (pkg/omakase.d.ts and
# pkg/encoders/omakase_encoders.d.ts, from `./build.sh wasm`): the JS takes the module's types from
# them. The pinned packages are installed (npm ci in tests/browser) only when missing or of another
# version, so a machine that has them runs offline.
set -euo pipefail
cd "$(dirname "$0")/.."

for f in pkg/omakase.d.ts pkg/encoders/omakase_encoders.d.ts; do
  if [ ! -f "$f" ]; then
    echo "typecheck-js: $f not found: build the browser package first (./build.sh wasm)" >&2
    exit 2
  fi
done
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "typecheck-js: needs node and npm (apt-get install nodejs npm)" >&2
  exit 2
fi

# The pinned version (package.json) against the installed one, if any.
pinned=$(node -p "require('./tests/browser/package.json').devDependencies.typescript")
installed=$(node -p "try { require('./tests/browser/node_modules/typescript/package.json').version } catch { '' }")
if [ "$installed" != "$pinned" ] || [ ! -x tests/browser/node_modules/.bin/tsc ]; then
  echo "typecheck-js: installing typescript $pinned (npm ci in tests/browser)" >&2
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

tests/browser/node_modules/.bin/tsc -p www/tsconfig.json --noEmit
echo "typecheck-js: www/ type-checks (typescript $pinned)"

# The npm package's declarations as a shop sees them: the package (scripts/pack-npm.sh) installed
# into a fresh folder, and a strict TypeScript page (tests/browser/types/shop.ts) checked against it,
# its @ts-expect-error lines included (misuse must stay a type error).
tarball=$(bash scripts/pack-npm.sh out/npm | tail -n 1)
shop=$(mktemp -d)
trap 'rm -rf "$shop"' EXIT
echo '{ "name": "a-shop", "private": true }' > "$shop/package.json"
(cd "$shop" && npm install --offline --no-audit --no-fund --loglevel=error "$OLDPWD/$tarball" >&2)
cp tests/browser/types/shop.ts tests/browser/types/tsconfig.json "$shop/"
tests/browser/node_modules/.bin/tsc -p "$shop/tsconfig.json"
echo "typecheck-js: the npm package's declarations type-check a shop's TypeScript (tests/browser/types/shop.ts)"
