// Module hooks for slow-load.mjs (they run on the loader thread).
export async function load(url, context, next) {
  if (url.endsWith('/dist/src/cli/main.js')) {
    process.stderr.write('slow-load: holding main.js\n');
    await new Promise((r) => setTimeout(r, 3000));
  }
  return next(url, context);
}
