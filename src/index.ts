export { startDataPlane, type DataPlane, type DataPlaneOptions, type Counters } from './dataplane/dataplane.js';
export type { Command } from './dataplane/commands.js';
export { TulleError, ConfigError } from './util/errors.js';
