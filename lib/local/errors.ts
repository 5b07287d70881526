// Errors of the local stack itself (not of the functions it runs): each message states the condition and,
// where there is one, the fix, because these are read by a developer at a terminal.

export class LocalStackError extends Error {
  override name = "LocalStackError";
}

/** A port the stack must own is taken, usually by another `npm start`. */
export class PortInUseError extends LocalStackError {
  override name = "PortInUseError";
  readonly port: number;

  constructor(port: number, variable: string, options?: ErrorOptions) {
    super(`port ${port} is in use; set ${variable}=… to another port (or stop what is using it)`, options);
    this.port = port;
  }
}

/** The stack's options or the developer's environment cannot produce a working stack. */
export class StackConfigError extends LocalStackError {
  override name = "StackConfigError";
}

/** `.local/stack.json` is missing or not what `npm start` writes. */
export class StackFileError extends LocalStackError {
  override name = "StackFileError";
}
