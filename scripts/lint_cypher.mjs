#!/usr/bin/env node
// Checks Cypher files with Neo4j's own front end (@neo4j-cypher/language-support, Cypher 5):
// syntax errors, undefined variables, type errors, deprecations. FalkorDB runs the same files
// in the tests; together they keep every file portable.
//
// usage: node scripts/lint_cypher.mjs [--strict] [FILE_OR_DIR ...]   (default: cypher/)
// Parameters named in a file's header (`// params: $name TYPE, ...`) are declared to the
// linter so `$name` is not reported as undefined; any other parameter is an error.
// Exit status: 1 if any error (or, with --strict, any warning), else 0. Every diagnostic is
// printed as file:line:col: severity: message. Warnings are not fatal by default because a
// few Neo4j deprecations (e.g. `CALL { }` without a scope clause) have no replacement that
// FalkorDB accepts.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { lintCypherQuery } from '@neo4j-cypher/language-support';

const SEVERITY = { 1: 'error', 2: 'warning', 3: 'info', 4: 'hint' };

// A placeholder value of the declared type, so type checks see the right kind of value.
function placeholder(type) {
  const t = (type || '').toUpperCase();
  if (t.startsWith('LIST')) return [];
  if (t.startsWith('MAP')) return {};
  if (t.startsWith('INT')) return 0;
  if (t.startsWith('FLOAT')) return 0.5;
  if (t.startsWith('BOOL')) return false;
  return '';
}

// `$name TYPE` pairs from the leading comment block, after a `params:` marker and before
// `returns:`.
export function headerParameters(text) {
  const header = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '') continue;
    if (!trimmed.startsWith('//')) break;
    header.push(trimmed.replace(/^\/\/\s?/, ''));
  }
  const parameters = {};
  let inParams = false;
  for (const line of header) {
    if (/^params:/i.test(line)) inParams = true;
    else if (/^[a-z_]+:/i.test(line)) inParams = false;
    if (!inParams) continue;
    for (const match of line.matchAll(/\$([A-Za-z_][A-Za-z0-9_]*)(?:\s*:?\s*([A-Z]+(?:<[A-Z]+>)?))?/g)) {
      parameters[match[1]] = placeholder(match[2]);
    }
  }
  return parameters;
}

function cypherFiles(target) {
  const stat = statSync(target);
  if (stat.isFile()) return [target];
  return readdirSync(target)
    .sort()
    .flatMap((entry) => cypherFiles(join(target, entry)))
    .filter((path) => path.endsWith('.cypher'));
}

export function lintFile(path) {
  const text = readFileSync(path, 'utf8');
  const parameters = headerParameters(text);
  const { diagnostics } = lintCypherQuery(text, { parameters, defaultLanguage: 'CYPHER 5' });
  return diagnostics.map((d) => ({
    line: d.range.start.line + 1,
    column: d.range.start.character + 1,
    severity: SEVERITY[d.severity] || String(d.severity),
    message: d.message.split('\n')[0],
  }));
}

function main(argv) {
  const strict = argv.includes('--strict');
  const paths = argv.filter((arg) => arg !== '--strict');
  const targets = paths.length > 0 ? paths : ['cypher'];
  const files = targets.flatMap(cypherFiles);
  if (files.length === 0) {
    console.error(`no .cypher files under ${targets.join(' ')}`);
    return 1;
  }
  const counts = { error: 0, warning: 0 };
  for (const file of files) {
    for (const d of lintFile(file)) {
      counts[d.severity] = (counts[d.severity] || 0) + 1;
      console.log(`${relative(process.cwd(), file)}:${d.line}:${d.column}: ${d.severity}: ${d.message}`);
    }
  }
  const failed = counts.error > 0 || (strict && counts.warning > 0);
  console.log(
    `lint_cypher: ${files.length} file(s) checked as Cypher 5: ` +
      `${counts.error} error(s), ${counts.warning} warning(s)${failed ? '' : ': ok'}`,
  );
  return failed ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
