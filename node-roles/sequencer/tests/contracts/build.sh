#!/bin/sh
# Regenerates Token.bin and Token.abi from Token.sol with solc-js 0.8.26 (npm).
# The tests read the committed outputs; they never need npm.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm install --silent solc@0.8.26 >/dev/null)
(cd "$work" && npx solcjs --bin --abi --optimize --base-path "$here" -o out "$here/Token.sol")
cp "$work"/out/*Token_sol_Token.bin "$here/Token.bin"
cp "$work"/out/*Token_sol_Token.abi "$here/Token.abi"
