// Errors the user can act on. Every command reports one of these as `baffle: <message>` (plus a hint line)
// on stderr and exits with its code; any other error is internal (exit 1, stack trace only with --debug).
// Raise these deep in the code so that the CLI never has to match message strings.

/** Exit codes of the `baffle` command (docs/cli.md). */
export const ExitCode = {
  ok: 0,
  /** A bug or an unexpected failure (a stack trace with --debug / BAFFLE_DEBUG=1). */
  internal: 1,
  /** Bad input: command line, configuration, files, model, data, ports, output directories. */
  input: 2,
  /** The server refused this client (authentication, protocol version, another connection took its place). */
  refused: 3,
  /** Gave up: no server reachable within --give-up. */
  gaveUp: 4,
  /** Stopped by SIGINT. */
  interrupted: 130,
  /** Stopped by SIGTERM. */
  terminated: 143,
} as const;

export type UserExitCode = typeof ExitCode.input | typeof ExitCode.refused | typeof ExitCode.gaveUp;

/** A problem the user can fix, with the exit code it ends the command with and an optional hint. */
export class UserError extends Error {
  readonly exitCode: UserExitCode;
  readonly hint: string | undefined;
  constructor(message: string, options: { exitCode?: UserExitCode; hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UserError';
    this.exitCode = options.exitCode ?? ExitCode.input;
    this.hint = options.hint;
  }
}

/** A model file that cannot be used, with the reason (not ONNX, unsupported op, no trainable parameters, …). */
export class ModelError extends UserError {
  constructor(message: string, hint?: string) {
    super(message, { hint });
    this.name = 'ModelError';
  }
}
