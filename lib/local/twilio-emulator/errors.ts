// Errors of the local Twilio emulator. `TwilioApiError` is what a client sees (Twilio's error object and
// HTTP status, mapped here and nowhere else); `TwilioEmulatorBugError` and `SpecLoadError` are the
// emulator's own failures and must never be mistaken for a Twilio answer.

export const TwilioErrorCodes = {
  /** Real Twilio only warns and ignores unknown parameters; the emulator rejects them so typos surface. */
  unknownParameters: 20001,
  authenticate: 20003,
  methodNotAllowed: 20004,
  notFound: 20404,
  tooManyRequests: 20429,
  internalServerError: 20500,
  serviceUnavailable: 20503,
  invalidToNumber: 21211,
  bodyRequired: 21602,
  fromRequired: 21603,
  toRequired: 21604,
  recipientOptedOut: 21610,
  uniqueNameExists: 50353,
  timeToClosedTooShort: 50376,
  conversationClosed: 50377,
  timerWithoutState: 50382,
  initialStateClosed: 50384,
  conversationInitializing: 50386,
  uniqueNameLooksLikeSid: 50390,
  bindingInUse: 50416,
  participantExists: 50433,
  groupParticipantExists: 50437,
  /** "Bad request: … does not match the API's expected schema" — used for invalid parameter values. */
  badRequest: 70002,
} as const;

export type TwilioErrorCode = (typeof TwilioErrorCodes)[keyof typeof TwilioErrorCodes];

/** Twilio's JSON error object, exactly the four fields twilio-node's `RestException` reads. */
export interface TwilioErrorBody {
  code: number;
  message: string;
  more_info: string;
  status: number;
}

export class TwilioApiError extends Error {
  override name = "TwilioApiError";
  readonly status: number;
  readonly code: number;

  constructor(status: number, code: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
    this.code = code;
  }

  toBody(): TwilioErrorBody {
    return {
      code: this.code,
      message: this.message,
      more_info: `https://www.twilio.com/docs/errors/${this.code}`,
      status: this.status,
    };
  }
}

/** An emulator response broke the OpenAPI contract: a bug in the emulator, never a Twilio behaviour. */
export class TwilioEmulatorBugError extends Error {
  override name = "TwilioEmulatorBugError";
}

export class SpecLoadError extends Error {
  override name = "SpecLoadError";
}

const C = TwilioErrorCodes;
const quoteAll = (names: readonly string[]): string => names.map((name) => `'${name}'`).join(", ");

/** Every Twilio error the emulator can answer with, each with its HTTP status. */
export const twilioErrors = {
  authenticate: () => new TwilioApiError(401, C.authenticate, "Authenticate"),
  accountMismatch: (accountSid: string) =>
    new TwilioApiError(
      401,
      C.authenticate,
      `Authenticate: the credentials do not grant access to ${accountSid}`,
    ),
  notFound: (path: string) =>
    new TwilioApiError(404, C.notFound, `The requested resource ${path} was not found`),
  methodNotAllowed: (method: string, path: string, allowed: readonly string[]) =>
    new TwilioApiError(
      405,
      C.methodNotAllowed,
      `Method not allowed: ${method} is not supported on ${path} (allowed: ${allowed.join(", ")})`,
    ),
  notImplemented: (operationId: string) =>
    new TwilioApiError(
      501,
      C.internalServerError,
      `The Twilio emulator does not implement ${operationId}; it exists in the OpenAPI spec only`,
    ),
  unsupportedContentType: (contentType: string) =>
    new TwilioApiError(
      400,
      C.badRequest,
      `Unsupported Content-Type '${contentType}': Twilio expects application/x-www-form-urlencoded`,
    ),
  unknownParameters: (names: readonly string[], operationId: string) =>
    new TwilioApiError(
      400,
      C.unknownParameters,
      `Unknown parameter${names.length > 1 ? "s" : ""} ${quoteAll(names)}: not accepted by ${operationId}`,
    ),
  invalidParameter: (name: string, detail: string) =>
    new TwilioApiError(400, C.badRequest, `Invalid parameter '${name}': ${detail}`),
  missingParameter: (name: string) =>
    new TwilioApiError(400, C.badRequest, `Missing required parameter '${name}'`),
  badRequest: (message: string) => new TwilioApiError(400, C.badRequest, message),
  injected: (status: number, code: number | undefined, message: string | undefined) =>
    new TwilioApiError(status, code ?? defaultCodeFor(status), message ?? defaultMessageFor(status)),
  emulatorBug: (message: string) =>
    new TwilioApiError(500, C.internalServerError, `Twilio emulator bug: ${message}`),

  invalidTo: (to: string) => new TwilioApiError(400, C.invalidToNumber, `Invalid 'To' Phone Number: ${to}`),
  toRequired: () => new TwilioApiError(400, C.toRequired, "A 'To' phone number is required."),
  fromRequired: () => new TwilioApiError(400, C.fromRequired, "A 'From' phone number is required."),
  bodyRequired: () => new TwilioApiError(400, C.bodyRequired, "Message body is required."),
  optedOut: () =>
    new TwilioApiError(
      400,
      C.recipientOptedOut,
      "Attempt to send to unsubscribed recipient: the 'To' number has replied with STOP",
    ),

  uniqueNameExists: (uniqueName: string) =>
    new TwilioApiError(
      409,
      C.uniqueNameExists,
      `Conversation with provided unique name already exists: ${uniqueName}`,
    ),
  uniqueNameLooksLikeSid: (uniqueName: string) =>
    new TwilioApiError(400, C.uniqueNameLooksLikeSid, `Unique name can not look like a SID: ${uniqueName}`),
  conversationClosed: (conversationSid: string) =>
    new TwilioApiError(
      400,
      C.conversationClosed,
      `Can't update conversation ${conversationSid} as it's in final closed state`,
    ),
  conversationInitializing: (conversationSid: string) =>
    new TwilioApiError(
      400,
      C.conversationInitializing,
      `Conversation ${conversationSid} in 'initializing' state may not be updated or used for message sending`,
    ),
  initialStateClosed: () => new TwilioApiError(400, C.initialStateClosed, "Initial state can't be 'closed'"),
  timerWithoutState: () =>
    new TwilioApiError(
      400,
      C.timerWithoutState,
      "Timer can't be set without state: 'Timers.Inactive' and/or 'Timers.Closed' require 'State'",
    ),
  timeToClosedTooShort: () =>
    new TwilioApiError(400, C.timeToClosedTooShort, "'Timers.Closed' must be at least 10 minutes"),
  bindingInUse: (conversationSid: string) =>
    new TwilioApiError(
      409,
      C.bindingInUse,
      `A binding for this participant and proxy address already exists in Conversation ${conversationSid}`,
    ),
  participantExists: (identity: string) =>
    new TwilioApiError(409, C.participantExists, `Participant already exists: ${identity}`),
  groupParticipantExists: () =>
    new TwilioApiError(
      409,
      C.groupParticipantExists,
      "Group Participant already exists: a participant with the same Address and ProxyAddress is in this conversation",
    ),
} as const;

function defaultCodeFor(status: number): number {
  if (status === 429) return C.tooManyRequests;
  if (status === 503) return C.serviceUnavailable;
  if (status >= 500) return C.internalServerError;
  return C.badRequest;
}

function defaultMessageFor(status: number): string {
  if (status === 429) return "Too many requests";
  if (status === 503) return "Service unavailable";
  if (status >= 500) return "Internal server error";
  return "Bad request";
}
