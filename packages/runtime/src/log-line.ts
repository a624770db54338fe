// Every segserve process logs JSON lines on stdout. When whatever reads stdout goes away (a
// parent killed, a closed pipe), writing must not crash a server that is otherwise healthy:
// EPIPE on stdout ends logging, not serving.

let stdoutClosed = false;
let guarded = false;

function guardStdout(): void {
  guarded = true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') {
      stdoutClosed = true;
      return;
    }
    // Anything else is unexpected: report it where it can still be seen.
    process.stderr.write(`stdout error: ${err.message}\n`);
  });
}

/** Writes one log line to stdout; a no-op once stdout's reader has gone. */
export function writeLogLine(line: string): void {
  if (!guarded) guardStdout();
  if (stdoutClosed || process.stdout.destroyed) return;
  process.stdout.write(line);
}
