// Set-up file of the process-starting test projects (vitest.config.ts): after each test file, the
// processes it started and left running are stopped, so that a failed start-up or a hook that gave
// up cannot leave a service holding the cores for the files after it.
import { afterAll } from 'vitest';
import { stopLeftovers } from './process.js';

afterAll(async () => {
  const n = await stopLeftovers();
  if (n > 0) process.stderr.write(`stopped ${n} process(es) this test file left running\n`);
});
