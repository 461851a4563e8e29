/** Builds dist/ once before the tests, so daemons spawned from bin/tulle run the current source. */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync('npx', ['--no-install', 'tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
}
