// Errors raised by the data layer: a missing, truncated or malformed data file, or a bad dataset request.
// Messages always name the offending file (or directory) and say what was expected.

import { UserError } from '../errors.ts';

export class DataError extends UserError {
  /** The file or directory the error is about, when there is one. */
  readonly path: string | undefined;

  constructor(message: string, path?: string) {
    super(message);
    this.name = 'DataError';
    this.path = path;
  }
}
