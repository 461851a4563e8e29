// Loaded into the soak's daemons (NODE_OPTIONS=--expose-gc --require): on SIGUSR2 run a full
// garbage collection, so the heap the soak then reads from /healthz is live data only. Without
// it V8 leaves garbage in the old generation until its next major GC, and heapUsed climbs for
// a long time with nothing leaking (seen: 17 → 21 MiB in 30 minutes, while the heap after a
// full GC stayed within 14.6–16.0 MiB and levelled off).
process.on('SIGUSR2', () => {
  if (typeof global.gc === 'function') global.gc();
});
