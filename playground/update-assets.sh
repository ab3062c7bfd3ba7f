#!/usr/bin/env bash
# Rebuilds the vendored files of playground/assets/ from the npm registry.
# Bump a version here, run it, update the versions, sizes and checksums in
# README.md, try the page (tests/browser/playground.mjs), then commit.
set -euo pipefail

GRAPHIQL=4.1.2
REACT=18.3.1
REACT_DOM=18.3.1

assets="$(cd "$(dirname "$0")" && pwd)/assets"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT_DOM" >/dev/null
for tgz in *.tgz; do
  mkdir "${tgz%.tgz}"
  tar -xzf "$tgz" -C "${tgz%.tgz}"
done

cp "react-$REACT/package/umd/react.production.min.js" "$assets/"
cp "react-dom-$REACT_DOM/package/umd/react-dom.production.min.js" "$assets/"
# The source map is not shipped: drop the comment that points at it, so that
# developer tools do not ask the server for it.
sed '/^\/\/# sourceMappingURL=/d' "graphiql-$GRAPHIQL/package/graphiql.min.js" >"$assets/graphiql.min.js"
cp "graphiql-$GRAPHIQL/package/graphiql.min.css" "$assets/"

# Nothing may load from another host: the only url(...) in the stylesheet
# must be data: URLs (the fonts and icons are inlined).
if grep -o 'url([^)]*' "$assets/graphiql.min.css" | grep -v -E '^url\("?data:' ; then
  echo "graphiql.min.css refers to a URL that is not data:; vendor it" >&2
  exit 1
fi
if grep -l 'sourceMappingURL' "$assets"/*.js "$assets"/*.css; then
  echo "a sourceMappingURL comment is left" >&2
  exit 1
fi

cd "$assets"
ls -l react.production.min.js react-dom.production.min.js graphiql.min.js graphiql.min.css
sha256sum react.production.min.js react-dom.production.min.js graphiql.min.js graphiql.min.css
