#!/usr/bin/env node
// The `custos` command. Built by `tsc -b` (npm's prepare step runs it on `npm ci`).
import '../dist/main.js';
