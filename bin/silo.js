#!/usr/bin/env node
// The CLI runs from the compiled output (`npm run build`, done by `npm install`/`npm test`).
import "../dist/cli/main.js";
