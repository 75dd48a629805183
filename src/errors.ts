/**
 * Errors thrown by sead. Every message names the argument or file at fault and
 * what was wrong with it, so a user can act on it without reading the source.
 */

/** Base class of every error sead throws on purpose. */
export class SeadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An argument, option, file or value from outside failed validation. */
export class InvalidInputError extends SeadError {}

/** A checkpoint or results file could not be read or does not fit. */
export class CheckpointError extends SeadError {}

/** The operation was cancelled through an AbortSignal. */
export class AbortError extends SeadError {
  constructor(message = "the operation was aborted", options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A request needs more memory than sead allows for it. */
export class ResourceLimitError extends SeadError {}
