#!/usr/bin/env node
'use strict';
/*
 * Lets py-solc-x (and so brownie and slither) drive solc-js, the official compiler
 * built for Node, because no native solc binary can be downloaded on offline
 * machines. py-solc-x only ever calls an executable in two ways:
 *   <exe> --version                                  -> must print "Version: X.Y.Z+commit.H"
 *   <exe> --standard-json [--allow-paths a,b,...]    -> standard JSON in on stdin, out on stdout
 * Imports are resolved from the working directory and the allowed paths only.
 */
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const args = process.argv.slice(2);

if (args.includes('--version')) {
  process.stdout.write('solc, the solidity compiler commandline interface\n');
  process.stdout.write(`Version: ${solc.version()}\n`);
  process.exit(0);
}

if (!args.includes('--standard-json')) {
  process.stderr.write('solc adapter: only --version and --standard-json are supported\n');
  process.exit(2);
}

const allowIndex = args.indexOf('--allow-paths');
const allowed = allowIndex >= 0 && args[allowIndex + 1] ? args[allowIndex + 1].split(',').filter(Boolean) : [];
const roots = [process.cwd(), ...allowed];

function findImports(importPath) {
  for (const root of roots) {
    const candidate = path.resolve(root, importPath);
    if (fs.existsSync(candidate)) {
      return { contents: fs.readFileSync(candidate, 'utf8') };
    }
  }
  return { error: `File not found in ${roots.join(', ')}: ${importPath}` };
}

const input = fs.readFileSync(0, 'utf8');
// solc-js may print diagnostics (e.g. ">>> Cannot retry compilation with SMT") on
// stdout; route everything to stderr while compiling so stdout stays pure JSON.
const stdoutWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, ...rest) => process.stderr.write(chunk, ...rest);
console.log = (...items) => process.stderr.write(items.join(' ') + '\n');
const output = solc.compile(input, { import: findImports });
process.stdout.write = stdoutWrite;
process.stdout.write(output);
