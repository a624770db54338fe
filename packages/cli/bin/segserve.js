#!/usr/bin/env node
// The `segserve` command: a committed launcher, so that npm links it at install time (before the
// build has written dist/); it runs the built command table.
import "../dist/bin.js";
