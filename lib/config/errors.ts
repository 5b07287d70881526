// Errors raised while reading configuration at cold start. They fail the init loudly, never a request.

export class ConfigError extends Error {
  override name = "ConfigError";
}
