#!/usr/bin/env bash
# Every test: static checks, unit, integration (real PostgreSQL, sshd, OIDC provider),
# end-to-end (real Chromium), then the leak scan over everything the tests saw.
set -euo pipefail
cd "$(dirname "$0")/.."

transcripts=$(mktemp -d -t sallyport-transcripts-XXXXXX)
results=$(mktemp -t sallyport-vitest-XXXXXX.json)
trap 'rm -rf "$transcripts" "$results"' EXIT
export SALLYPORT_TRANSCRIPT_DIR="$transcripts"

echo "== typecheck"; npm run -s typecheck
echo "== lint"; npm run -s lint
echo "== tests"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@" || status=$?

echo "== leak scan"
node scripts/leak-scan.mjs "$transcripts" || status=$?

# One closing line that any CI reader understands.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' "$results" || true
exit "$status"
