// A command-line mistake (a flag missing, malformed or in conflict): reported with exit code 2.
import { UserError } from '../core/errors.ts';

export class UsageError extends UserError {
  constructor(message: string, hint?: string) {
    super(message, { hint });
    this.name = 'UsageError';
  }
}
