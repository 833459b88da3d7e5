// Rewrites docs/errors.md from the error catalogue in src/core/errors.ts.
import { writeFileSync } from 'node:fs';
import { renderErrorTable } from '../src/core/errors.js';

writeFileSync(new URL('../docs/errors.md', import.meta.url), renderErrorTable());
