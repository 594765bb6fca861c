#!/usr/bin/env node
// Entry point of the `baffle` command: registers the TypeScript loader, then runs the CLI from source.
import { register } from 'tsx/esm/api';

register();
const { cli } = await import('../src/cli/main.ts');
await cli(process.argv.slice(2));
