#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (built by `npm ci` through the `prepare` script). The same CLI runs
// as `node dist/src/cli/main.js …`.
import { runCli } from '../dist/src/cli/main.js';
void runCli(process.argv);
