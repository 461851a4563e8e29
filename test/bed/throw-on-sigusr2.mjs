// Preloaded into a daemon by a test (NODE_OPTIONS=--import=<this file>): on SIGUSR2 the process
// throws an exception that nobody catches, to see how the daemon ends when that happens.
process.on('SIGUSR2', () => {
  throw new Error('thrown on SIGUSR2 by the test');
});
