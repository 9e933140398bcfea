// Error types shared by every stage, and what each means for the process (after kafkajs src/errors.js):
// - GatewayError: an operational failure (disk, network, Kafka, radio) with a stable code and whether a retry
//   can help. Link errors are retried; a record the destination refuses for good is dead-lettered.
// - ConfigError, and the GatewayError codes in NEEDS_OPERATOR_CODES: a person must act; exit 78, no restart loop.
// - Anything else thrown where a GatewayError was expected is a bug (isProgrammingError): retrying cannot fix
//   it and would stall the buffer behind it, so the process logs it as fatal and exits for systemd to restart.
// Input problems are not thrown on the hot path but returned as results (see ingress/rejections.ts).

export interface GatewayErrorOptions {
  readonly retriable: boolean;
  readonly cause?: unknown;
}

/** An operational failure (disk, network, Kafka). `code` is UPPER_SNAKE and stable for logs and metrics. */
export class GatewayError extends Error {
  readonly code: string;
  readonly retriable: boolean;

  constructor(code: string, message: string, options: GatewayErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.retriable = options.retriable;
  }
}

/** The buffer refused records: its configured bound is reached (policy `reject`) or the disk is full. */
export class BufferFullError extends GatewayError {
  constructor(message: string, cause?: unknown) {
    super('BUFFER_FULL', message, { retriable: true, cause });
    this.name = 'BufferFullError';
  }
}

/** The configuration cannot be used. `issues` name the key and the problem, one per line. */
export class ConfigError extends Error {
  /** The file, or the key, the issues are about. */
  readonly source: string;
  readonly issues: readonly string[];

  constructor(source: string, issues: readonly string[]) {
    super(`invalid configuration in ${source}:\n${issues.map((issue) => `  - ${issue}`).join('\n')}`);
    this.name = 'ConfigError';
    this.source = source;
    this.issues = issues;
  }
}

/** Exit code for a bad configuration (sysexits EX_CONFIG); the systemd unit does not restart on it. */
export const EXIT_CONFIG = 78;

/**
 * GatewayError codes that a restart cannot fix and a person must (a buffer path the service cannot write, a
 * buffer file that is not a database, or one written by a newer version): the process exits with EXIT_CONFIG instead of restarting in a loop.
 */
const NEEDS_OPERATOR_CODES: ReadonlySet<string> = new Set(['BUFFER_PATH', 'BUFFER_CORRUPT', 'BUFFER_NEWER', 'KAFKA_COMPRESSION']);

export function needsOperator(error: unknown): boolean {
  return error instanceof ConfigError || (error instanceof GatewayError && NEEDS_OPERATOR_CODES.has(error.code));
}

/**
 * A programming error: the kinds of error JavaScript throws for a bug (a property of undefined, a bad argument
 * type, an invalid length) rather than for a condition of the outside world. Never retried.
 */
export function isProgrammingError(error: unknown): boolean {
  if (error instanceof GatewayError) return false;
  return error instanceof TypeError || error instanceof RangeError || error instanceof ReferenceError || error instanceof SyntaxError;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
