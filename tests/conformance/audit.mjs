#!/usr/bin/env node
// The GraphQL over HTTP conformance audit (graphql-http's `auditServer`, the
// suite the specification's working group maintains) against a running
// Backplane:
//
//   node tests/conformance/audit.mjs http://127.0.0.1:8080/graphql [--strict]
//
// Prints every audit that is not ok. Exits 1 when a MUST fails (`error`), or
// with --strict when a SHOULD fails too (`warn`); a MAY not taken (`notice`)
// is only printed.
import { auditServer } from 'graphql-http';

const [url, flag] = process.argv.slice(2);
if (!url) {
  console.error('usage: node tests/conformance/audit.mjs URL [--strict]');
  process.exit(2);
}
const results = await auditServer({ url });
let musts = 0;
let shoulds = 0;
for (const r of results) {
  if (r.status === 'ok') continue;
  if (r.status === 'error') musts += 1;
  else if (r.status === 'warn') shoulds += 1;
  console.log(`${r.status.toUpperCase()} ${r.id} ${r.name}: ${r.reason}`);
}
const ok = results.filter((r) => r.status === 'ok').length;
console.log(`${ok}/${results.length} audits ok; ${musts} MUST failed, ${shoulds} SHOULD not met`);
process.exit(musts > 0 || (flag === '--strict' && shoulds > 0) ? 1 : 0);
