// Preload (node --import): holds the loading of tulle's dist/src/cli/main.js for 3 s and says so on
// stderr, so a test can signal bin/tulle while its code is still loading (test/unit/process-lifetime).
import { register } from 'node:module';

register('./slow-load-hooks.mjs', import.meta.url);
