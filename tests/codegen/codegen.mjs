// Generates typed operations with GraphQL Code Generator's client preset, as
// an admin UI developer would, for every document a newcomer meets first:
// the playground's examples (playground/assets/examples.json) and the
// README's GraphQL blocks.
//
//   node codegen.mjs --root <repo> --out <dir>
//
// 1. Against schema.graphql: every example and README operation.
// 2. Against each role's SDL (schemas/<role>.graphql): the examples that
//    validate against it (graphql-js), at least two per role; the auditor's
//    include one reading the audit log.
// 3. TypeScript checks the generated code and a use of it that reads links
//    that always exist without `?.` (a nullable link would not compile).
//
// Exits non-zero, saying why, on any failure. Loopback only: nothing here
// touches the network.

import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

import { generate } from '@graphql-codegen/cli';
import { buildSchema, parse, validate, Kind } from 'graphql';

const require = createRequire(import.meta.url);

function flags(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    out[argv[i].replace(/^--/, '')] = argv[i + 1];
  }
  return out;
}

const opts = flags(process.argv.slice(2));
if (!opts.root || !opts.out) {
  console.error('usage: node codegen.mjs --root <repo> --out <dir>');
  process.exit(2);
}
const root = resolve(opts.root);
const out = resolve(opts.out);
mkdirSync(out, { recursive: true });

function fail(message) {
  console.error(`codegen: ${message}`);
  process.exit(1);
}

// The documents.
const examples = JSON.parse(readFileSync(join(root, 'playground/assets/examples.json'), 'utf8'));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const readmeBlocks = [...readme.matchAll(/```graphql\n([\s\S]*?)```/g)]
  .map((m) => m[1])
  .filter((text) => {
    try {
      return parse(text).definitions.every((d) => d.kind === Kind.OPERATION_DEFINITION || d.kind === Kind.FRAGMENT_DEFINITION);
    } catch {
      return false;
    }
  });
if (readmeBlocks.length < 1) {
  fail('the README has no GraphQL operation block');
}

// Anonymous operations get a name of their own, so that each has its types.
function named(text, name) {
  return text.replace(/^(\s*)(query|mutation)?\s*\{/m, (_, lead, kw) => `${lead}${kw || 'query'} ${name} {`);
}

function writeDocuments(dir, docs) {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of docs) {
    writeFileSync(join(dir, `${name}.graphql`), text);
  }
  return join(dir, '*.graphql');
}

async function codegen(schemaPath, documents, target) {
  await generate(
    {
      schema: schemaPath,
      documents,
      generates: {
        [`${target}/`]: {
          preset: 'client',
          presetConfig: { fragmentMasking: false },
          config: { strictScalars: true, scalars: { DateTime: 'string', JSON: 'unknown' } },
        },
      },
      silent: true,
      errorsOnly: true,
    },
    true,
  );
}

// 1. The whole schema: every example and README block.
const all = [
  ...Object.entries(examples).map(([name, e]) => [`example_${name.replace(/-/g, '_')}`, e.query]),
  ...readmeBlocks.map((text, i) => [`readme_${i}`, named(text, `Readme${i}`)]),
];
try {
  await codegen(join(root, 'schema.graphql'), writeDocuments(join(out, 'docs-all'), all), join(out, 'gen-all'));
} catch (err) {
  fail(`against schema.graphql: ${err.message || err}`);
}
console.log(`schema.graphql: ${all.length} documents typed`);

// 2. Each role's SDL: the examples it can run.
const roles = readdirSync(join(root, 'schemas')).filter((f) => f.endsWith('.graphql')).map((f) => f.replace(/\.graphql$/, ''));
if (roles.length < 6) {
  fail(`only ${roles.length} role schemas in schemas/`);
}
for (const role of roles) {
  const sdlPath = join(root, 'schemas', `${role}.graphql`);
  const schema = buildSchema(readFileSync(sdlPath, 'utf8'));
  // graphql-js's validation does not refuse an operation type the schema
  // has no root for (a mutation, to the auditor): that is checked first.
  const runs = (doc) =>
    doc.definitions.every((d) => d.kind !== Kind.OPERATION_DEFINITION || schema.getRootType(d.operation)) &&
    validate(schema, doc).length === 0;
  const own = Object.entries(examples).filter(([, e]) => runs(parse(e.query)));
  if (own.length < 2) {
    fail(`the role ${role} has ${own.length} examples of its own (${own.map(([n]) => n).join(', ')})`);
  }
  if (role === 'auditor' && !own.some(([, e]) => e.query.includes('auditEvents'))) {
    fail('no auditor example reads the audit log');
  }
  try {
    await codegen(
      sdlPath,
      writeDocuments(join(out, `docs-${role}`), own.map(([name, e]) => [`example_${name.replace(/-/g, '_')}`, e.query])),
      join(out, `gen-${role}`),
    );
  } catch (err) {
    fail(`against schemas/${role}.graphql: ${err.message || err}`);
  }
  console.log(`schemas/${role}.graphql: ${own.map(([n]) => n).join(', ')}`);
}

// 3. TypeScript: the generated code compiles, and links that always exist
// are read without `?.`.
writeFileSync(
  join(out, 'use.ts'),
  [
    "import type { LookupQuery, AccountActivityQuery, OpenInvoicesQuery } from './gen-all/graphql';",
    'export function names(l: LookupQuery, a: AccountActivityQuery, o: OpenInvoicesQuery): string[] {',
    '  const users = l.users.nodes.map((u) => u.organization.slug);',
    '  const tickets = a.tickets.nodes.map((t) => t.requester.email ?? t.requester.name);',
    '  const invoices = o.invoices.nodes.map((i) => i.organization.name);',
    '  return [...users, ...tickets, ...invoices];',
    '}',
    '',
  ].join('\n'),
);
writeFileSync(
  join(out, 'tsconfig.json'),
  JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, target: 'ES2020', module: 'ES2020', moduleResolution: 'node', skipLibCheck: true, types: [] },
    include: ['use.ts', 'gen-all/*.ts', ...roles.map((r) => `gen-${r}/*.ts`)],
  }),
);
const tsc = require.resolve('typescript/bin/tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', join(out, 'tsconfig.json')], { stdio: 'pipe', cwd: resolve('.') });
} catch (err) {
  fail(`TypeScript refuses the generated code:\n${(err.stdout || '').toString()}${(err.stderr || '').toString()}`);
}
console.log('ok: typed operations generated and type-checked');
