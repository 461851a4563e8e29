/**
 * Control-plane errors: a stable `code`, a message a user can act on, and the `cause` kept.
 * (The packet path never throws: it counts drops by reason in native counters.)
 */
export class TulleError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TulleError';
    this.code = code;
  }
}

export class ConfigError extends TulleError {
  readonly field: string;
  constructor(field: string, problem: string, options?: { cause?: unknown }) {
    super('ERR_TULLE_CONFIG', `config: ${field}: ${problem}`, options);
    this.name = 'ConfigError';
    this.field = field;
  }
}
