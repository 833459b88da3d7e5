/** The `osprey` CLI from the sources (deploy/local/up.ts runs it through tsx when dist/ is not built). */
import { main } from '../../src/cli/main.js';

await main(process.argv);
