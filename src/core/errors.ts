/**
 * Errors the operator can fix (style.md habit 5, "AbortError" in Shopify CLI): a one-line
 * cause, what to try next, and a stable code for --json output and tests. Anything else that
 * escapes a command is a bug and keeps its stack trace.
 */
export class OperatorError extends Error {
  override readonly name: string = 'OperatorError';

  constructor(
    message: string,
    /** what to try, written as an instruction: "start the server, or fix the port" */
    public readonly hint: string,
    /** stable machine-readable code, e.g. ECONFIG, ECONNREFUSED, ETLS */
    public readonly code: string = 'EOPERATOR',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  toJSON(): { code: string; message: string; hint: string } {
    return { code: this.code, message: this.message, hint: this.hint };
  }
}

export function isOperatorError(err: unknown): err is OperatorError {
  return err instanceof OperatorError;
}
