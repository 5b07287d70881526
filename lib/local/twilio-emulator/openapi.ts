// Twilio's OpenAPI specs (copied verbatim into ./spec) as the emulator's contract: route matching,
// request validation (unknown parameters rejected, which Prism does not do) and response validation
// (every answer the emulator produces is checked, so the emulator cannot drift from the spec unnoticed).
//
// The YAML is parsed once per process. Parsing 2.2 MB of YAML costs ~0.6 s, so a slimmed JSON copy
// (descriptions and examples dropped) is cached in the OS temp dir, keyed by a hash of the YAML text;
// a warm start reads JSON only. Validators are compiled lazily, per operation, on first use.
import { createHash } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { parse } from "yaml";
import { SpecLoadError } from "./errors.ts";

export const SpecIds = { conversations: "conversations_v1", api: "api_v2010" } as const;
export type SpecId = (typeof SpecIds)[keyof typeof SpecIds];

const SPEC_FILES: Record<SpecId, string> = {
  conversations_v1: "twilio_conversations_v1.yaml",
  api_v2010: "twilio_api_v2010.yaml",
};

/** Bump when `slimDocument` changes, so stale caches are ignored. */
const CACHE_FORMAT = "twilio-emulator-spec-cache/1";

const HTTP_METHODS = ["get", "post", "put", "patch", "delete"] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];
const isHttpMethod = (value: string): value is HttpMethod => HTTP_METHODS.some((method) => method === value);

export interface ParameterSpec {
  readonly name: string;
  readonly location: "path" | "query" | "header";
  readonly required: boolean;
  readonly schema: unknown;
}

export interface OperationSpec {
  readonly specId: SpecId;
  readonly operationId: string;
  readonly method: HttpMethod;
  readonly pathTemplate: string;
  readonly parameters: readonly ParameterSpec[];
  /** The `application/x-www-form-urlencoded` request body schema, if the operation takes a body. */
  readonly formBody: unknown;
  /** Declared statuses: the JSON schema of the body, or `null` for "no content" (204). */
  readonly responses: ReadonlyMap<number, unknown>;
}

export type RouteMatch =
  | { kind: "operation"; operation: OperationSpec; pathParams: Record<string, string> }
  | { kind: "method-not-allowed"; allowed: readonly HttpMethod[] }
  | { kind: "not-found" };

export type RequestProblem =
  | { kind: "unknown-parameters"; names: readonly string[] }
  | { kind: "missing-parameter"; name: string }
  | { kind: "invalid-parameter"; name: string; detail: string }
  | { kind: "invalid-path-parameter"; name: string; detail: string };

export type RequestCheck =
  | { ok: true; params: Readonly<Record<string, unknown>> }
  | { ok: false; problem: RequestProblem };

export interface RequestInput {
  readonly pathParams: Readonly<Record<string, string>>;
  readonly query: ReadonlyMap<string, readonly string[]>;
  readonly body: ReadonlyMap<string, readonly string[]>;
  readonly header: (name: string) => string | undefined;
}

export interface SpecLoadStats {
  readonly ms: number;
  readonly sources: Readonly<Record<SpecId, "cache" | "yaml">>;
}

type JsonSchema = Record<string, unknown>;
type Mode = "request" | "response";

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

// ---------------------------------------------------------------------------------------------------
// Loading

interface SlimSpec {
  readonly specId: SpecId;
  readonly paths: Record<string, unknown>;
  readonly schemas: Record<string, unknown>;
}

const DROPPED_KEYWORDS = new Set([
  "description",
  "summary",
  "example",
  "examples",
  "tags",
  "servers",
  "headers",
]);

/**
 * Drops documentation from the spec. Keys of name maps (`paths`, `properties`, `components.schemas`,
 * `responses`, `content`) are data, not keywords, so a property called `description` survives.
 */
function slim(node: unknown, isNameMap: boolean): unknown {
  if (Array.isArray(node)) return node.map((item) => slim(item, false));
  if (!isRecord(node)) return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (!isNameMap && (DROPPED_KEYWORDS.has(key) || key.startsWith("x-"))) continue;
    const childIsNameMap = !isNameMap && (key === "properties" || key === "responses" || key === "content");
    out[key] = slim(value, childIsNameMap);
  }
  return out;
}

function slimDocument(specId: SpecId, parsed: unknown): SlimSpec {
  if (!isRecord(parsed) || !isRecord(parsed.paths) || !isRecord(parsed.components)) {
    throw new SpecLoadError(`${SPEC_FILES[specId]} is not an OpenAPI document with paths and components`);
  }
  const schemas = parsed.components.schemas;
  if (!isRecord(schemas)) throw new SpecLoadError(`${SPEC_FILES[specId]} has no components.schemas`);
  const paths: Record<string, unknown> = {};
  for (const [path, item] of Object.entries(parsed.paths)) paths[path] = slim(item, false);
  const slimSchemas: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(schemas)) slimSchemas[name] = slim(schema, false);
  return { specId, paths, schemas: slimSchemas };
}

function readSpec(specId: SpecId): { spec: SlimSpec; source: "cache" | "yaml" } {
  const file = fileURLToPath(new URL(`./spec/${SPEC_FILES[specId]}`, import.meta.url));
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (cause) {
    throw new SpecLoadError(`Cannot read the OpenAPI spec ${file}`, { cause });
  }
  const hash = createHash("sha256").update(CACHE_FORMAT).update(text).digest("hex").slice(0, 24);
  const cacheFile = join(tmpdir(), `twilio-emulator-${specId}-${hash}.json`);
  try {
    const cached: unknown = JSON.parse(readFileSync(cacheFile, "utf8"));
    if (isRecord(cached) && isRecord(cached.paths) && isRecord(cached.schemas)) {
      return { spec: { specId, paths: cached.paths, schemas: cached.schemas }, source: "cache" };
    }
  } catch {
    // No cache yet (or a torn one): fall through to the YAML, which is the source of truth.
  }
  let parsed: unknown;
  try {
    // uniqueKeys: false skips a per-map duplicate scan and saves ~25% of the parse time.
    parsed = parse(text, { uniqueKeys: false });
  } catch (cause) {
    throw new SpecLoadError(`Cannot parse ${file}`, { cause });
  }
  const spec = slimDocument(specId, parsed);
  try {
    // Write-then-rename so a concurrent reader never sees half a file.
    const partial = `${cacheFile}.${process.pid}.tmp`;
    writeFileSync(partial, JSON.stringify({ paths: spec.paths, schemas: spec.schemas }));
    renameSync(partial, cacheFile);
  } catch {
    // A read-only temp dir only costs the next process a YAML parse.
  }
  return { spec, source: "yaml" };
}

function extractOperations(spec: SlimSpec): OperationSpec[] {
  const operations: OperationSpec[] = [];
  for (const [pathTemplate, item] of Object.entries(spec.paths)) {
    if (!isRecord(item)) continue;
    for (const [method, op] of Object.entries(item)) {
      if (!isHttpMethod(method) || !isRecord(op)) continue;
      if (typeof op.operationId !== "string") {
        throw new SpecLoadError(`${method.toUpperCase()} ${pathTemplate} has no operationId`);
      }
      operations.push({
        specId: spec.specId,
        operationId: op.operationId,
        method,
        pathTemplate,
        parameters: extractParameters(op.parameters, `${op.operationId}`),
        formBody: mediaSchema(op.requestBody, "application/x-www-form-urlencoded"),
        responses: extractResponses(op.responses),
      });
    }
  }
  return operations;
}

function extractParameters(value: unknown, where: string): ParameterSpec[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new SpecLoadError(`${where}: parameters is not a list`);
  return value.map((param) => {
    if (!isRecord(param) || typeof param.name !== "string") {
      throw new SpecLoadError(`${where}: a parameter has no name`);
    }
    const location = param.in;
    if (location !== "path" && location !== "query" && location !== "header") {
      throw new SpecLoadError(
        `${where}: parameter ${param.name} is in unsupported location ${String(location)}`,
      );
    }
    return { name: param.name, location, required: param.required === true, schema: param.schema };
  });
}

function mediaSchema(holder: unknown, mediaType: string): unknown {
  if (!isRecord(holder) || !isRecord(holder.content)) return undefined;
  const media = holder.content[mediaType];
  return isRecord(media) ? media.schema : undefined;
}

function extractResponses(value: unknown): Map<number, unknown> {
  const responses = new Map<number, unknown>();
  if (!isRecord(value)) return responses;
  for (const [status, response] of Object.entries(value)) {
    const code = Number(status);
    if (!Number.isInteger(code)) continue;
    responses.set(code, mediaSchema(response, "application/json") ?? null);
  }
  return responses;
}

// ---------------------------------------------------------------------------------------------------
// OpenAPI 3.0 schema → JSON Schema (draft-07, what ajv's default class speaks)

const PASSED_KEYWORDS = [
  "type",
  "enum",
  "format",
  "pattern",
  "minLength",
  "maxLength",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
  "minItems",
  "maxItems",
  "uniqueItems",
  "required",
] as const;

/**
 * Converts one OpenAPI 3.0 schema. `nullable: true` becomes a `"null"` member of `type` (and of `enum`);
 * `$ref: #/components/schemas/X` points into the spec's definitions. In response mode every object
 * with declared properties becomes closed and complete (`additionalProperties: false`, all properties
 * required): the emulator must emit exactly the spec's fields, as Twilio does (nulls included).
 */
function toJsonSchema(node: unknown, specId: SpecId, mode: Mode): JsonSchema {
  if (!isRecord(node)) return {};
  if (typeof node.$ref === "string") {
    const prefix = "#/components/schemas/";
    if (!node.$ref.startsWith(prefix)) throw new SpecLoadError(`Unsupported $ref ${node.$ref} in ${specId}`);
    const name = node.$ref.slice(prefix.length).replaceAll("~", "~0").replaceAll("/", "~1");
    return { $ref: `${specId}#/definitions/${name}` };
  }
  const out: JsonSchema = {};
  for (const keyword of PASSED_KEYWORDS) if (node[keyword] !== undefined) out[keyword] = node[keyword];
  if (node.items !== undefined) out.items = toJsonSchema(node.items, specId, mode);
  if (isRecord(node.properties)) {
    const properties: Record<string, JsonSchema> = {};
    for (const [name, schema] of Object.entries(node.properties)) {
      properties[name] = toJsonSchema(schema, specId, mode);
    }
    out.properties = properties;
    if (mode === "response") {
      out.additionalProperties = false;
      out.required = Object.keys(properties);
    }
  }
  if (isRecord(node.additionalProperties)) {
    out.additionalProperties = toJsonSchema(node.additionalProperties, specId, mode);
  } else if (typeof node.additionalProperties === "boolean") {
    out.additionalProperties = node.additionalProperties;
  }
  for (const combinator of ["oneOf", "anyOf", "allOf"] as const) {
    const members = node[combinator];
    if (Array.isArray(members)) out[combinator] = members.map((member) => toJsonSchema(member, specId, mode));
  }
  // A bare `nullable: true` (e.g. `timers`, `bindings`) declares no type at all: anything goes.
  if (node.nullable === true) {
    if (typeof out.type === "string") out.type = [out.type, "null"];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  }
  return out;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})$/;
const RFC2822 =
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$/;
/** Twilio-specific formats that carry no checkable constraint for the emulator. */
const OPAQUE_FORMATS = [
  "int32",
  "int64",
  "uri-map",
  "http-method",
  "iso-country-code",
  "endpoint",
  "twiml",
  "currency",
  "phone-number-capabilities",
  "ice-server",
];

function createAjv(mode: Mode, specs: readonly SlimSpec[]): Ajv {
  const ajv = new Ajv({
    strict: false,
    allErrors: true,
    // Form fields arrive as strings (and repeated keys as lists); coerce them as Twilio's parser does.
    coerceTypes: mode === "request" ? "array" : false,
  });
  for (const format of OPAQUE_FORMATS) ajv.addFormat(format, true);
  ajv.addFormat("date-time", RFC3339);
  ajv.addFormat("date-time-rfc-2822", RFC2822);
  ajv.addFormat("date", /^\d{4}-\d{2}-\d{2}$/);
  // Spec quirk: 2010-04-01 list fields `uri`, `first_page_uri`, `next_page_uri` are `format: uri` but are
  // relative references in Twilio's real answers. Requests must still send absolute URLs.
  ajv.addFormat(
    "uri",
    mode === "request" ? isAbsoluteUrl : (value) => value.startsWith("/") || isAbsoluteUrl(value),
  );
  // Loose on purpose: `whatsapp:+1…`, short codes and alphanumeric sender IDs are all valid addresses.
  ajv.addFormat("phone-number", /^(?:[a-z]+:)?[^\s:][^\s]*$/);
  for (const spec of specs) {
    const definitions: Record<string, JsonSchema> = {};
    for (const [name, schema] of Object.entries(spec.schemas)) {
      definitions[name] = toJsonSchema(schema, spec.specId, mode);
    }
    ajv.addSchema({ $id: spec.specId, definitions });
  }
  return ajv;
}

function isAbsoluteUrl(value: string): boolean {
  return /^https?:\/\//i.test(value) && URL.canParse(value);
}

/** The error object Twilio returns for every failure (no operation declares 4xx/5xx bodies). */
const ERROR_SCHEMA: JsonSchema = {
  type: "object",
  properties: {
    code: { type: "integer" },
    message: { type: "string", minLength: 1 },
    more_info: { type: "string", pattern: "^https://www\\.twilio\\.com/docs/errors/\\d+$" },
    status: { type: "integer", minimum: 400, maximum: 599 },
  },
  required: ["code", "message", "more_info", "status"],
  additionalProperties: false,
};

// ---------------------------------------------------------------------------------------------------
// The contract

interface Route {
  readonly template: string;
  readonly regex: RegExp;
  readonly names: readonly string[];
  readonly literalSegments: number;
  readonly operations: Map<HttpMethod, OperationSpec>;
}

interface CompiledRequest {
  readonly query: ValidateFunction;
  readonly body: ValidateFunction;
  readonly pathParams: ReadonlyMap<string, ValidateFunction>;
  readonly headers: ReadonlyMap<string, ValidateFunction>;
}

export class TwilioOpenApi {
  readonly stats: SpecLoadStats;
  readonly #routes: readonly Route[];
  readonly #requestAjv: Ajv;
  readonly #responseAjv: Ajv;
  readonly #compiledRequests = new Map<OperationSpec, CompiledRequest>();
  readonly #compiledResponses = new Map<string, ValidateFunction>();
  readonly #errorValidator: ValidateFunction;

  constructor(specs: readonly SlimSpec[], load: { started: number; sources: SpecLoadStats["sources"] }) {
    const routes = new Map<string, Route>();
    for (const operation of specs.flatMap(extractOperations)) {
      let route = routes.get(operation.pathTemplate);
      if (route === undefined) {
        route = compileRoute(operation.pathTemplate);
        routes.set(operation.pathTemplate, route);
      }
      route.operations.set(operation.method, operation);
    }
    // Literal segments win over parameters, so `/Configuration/Webhooks` never matches `/{Sid}/…`.
    this.#routes = [...routes.values()].sort((a, b) => b.literalSegments - a.literalSegments);
    this.#requestAjv = createAjv("request", specs);
    this.#responseAjv = createAjv("response", specs);
    this.#errorValidator = this.#responseAjv.compile(ERROR_SCHEMA);
    this.stats = { ms: Math.round(performance.now() - load.started), sources: load.sources };
  }

  operations(): OperationSpec[] {
    return this.#routes.flatMap((route) => [...route.operations.values()]);
  }

  match(method: string, pathname: string): RouteMatch {
    for (const route of this.#routes) {
      const found = route.regex.exec(pathname);
      if (found === null) continue;
      const lower = method.toLowerCase();
      const operation = isHttpMethod(lower) ? route.operations.get(lower) : undefined;
      if (operation === undefined)
        return { kind: "method-not-allowed", allowed: [...route.operations.keys()] };
      const pathParams: Record<string, string> = {};
      route.names.forEach((name, i) => {
        pathParams[name] = safeDecode(found[i + 1] ?? "");
      });
      return { kind: "operation", operation, pathParams };
    }
    return { kind: "not-found" };
  }

  validateRequest(operation: OperationSpec, input: RequestInput): RequestCheck {
    const compiled = this.#compileRequest(operation);
    for (const [name, validate] of compiled.pathParams) {
      const value = input.pathParams[name];
      if (!validate(value)) {
        return {
          ok: false,
          problem: { kind: "invalid-path-parameter", name, detail: describe(validate.errors) },
        };
      }
    }
    for (const [name, validate] of compiled.headers) {
      const value = input.header(name);
      if (value !== undefined && !validate(value)) {
        return { ok: false, problem: { kind: "invalid-parameter", name, detail: describe(validate.errors) } };
      }
    }
    const query = fieldsToObject(input.query);
    const queryProblem = problemOf(compiled.query, query, input.query);
    if (queryProblem !== undefined) return { ok: false, problem: queryProblem };
    const body = fieldsToObject(input.body);
    const bodyProblem = problemOf(compiled.body, body, input.body);
    if (bodyProblem !== undefined) return { ok: false, problem: bodyProblem };
    return { ok: true, params: { ...query, ...body } };
  }

  /** Problems with a response the emulator is about to send; empty when it honours the spec. */
  validateResponse(operation: OperationSpec | undefined, status: number, body: unknown): string[] {
    if (operation === undefined || !operation.responses.has(status)) {
      if (status >= 400) return this.validateErrorBody(body);
      const where = operation === undefined ? "an unrouted request" : operation.operationId;
      return [`status ${status} is not declared for ${where}`];
    }
    const schema = operation.responses.get(status);
    if (schema === null || schema === undefined) {
      return body === undefined ? [] : [`${operation.operationId} ${status} must have no body`];
    }
    const key = `${operation.specId}:${operation.operationId}:${status}`;
    let validate = this.#compiledResponses.get(key);
    if (validate === undefined) {
      validate = this.#responseAjv.compile(toJsonSchema(schema, operation.specId, "response"));
      this.#compiledResponses.set(key, validate);
    }
    return validate(body) ? [] : listErrors(validate.errors);
  }

  validateErrorBody(body: unknown): string[] {
    return this.#errorValidator(body) ? [] : listErrors(this.#errorValidator.errors);
  }

  #compileRequest(operation: OperationSpec): CompiledRequest {
    const cached = this.#compiledRequests.get(operation);
    if (cached !== undefined) return cached;
    const ajv = this.#requestAjv;
    const convert = (schema: unknown) => toJsonSchema(schema, operation.specId, "request");
    const queryParams = operation.parameters.filter((param) => param.location === "query");
    const queryProperties: Record<string, JsonSchema> = {};
    for (const param of queryParams) queryProperties[param.name] = convert(param.schema);
    const query = ajv.compile({
      type: "object",
      properties: queryProperties,
      required: queryParams.filter((param) => param.required).map((param) => param.name),
      additionalProperties: false,
    });
    // An operation without a request body accepts an empty body only.
    const bodySchema = operation.formBody === undefined ? { properties: {} } : convert(operation.formBody);
    const body = ajv.compile({ ...bodySchema, type: "object", additionalProperties: false });
    const pathParams = new Map<string, ValidateFunction>();
    const headers = new Map<string, ValidateFunction>();
    for (const param of operation.parameters) {
      if (param.location === "path") pathParams.set(param.name, ajv.compile(convert(param.schema)));
      if (param.location === "header") headers.set(param.name, ajv.compile(convert(param.schema)));
    }
    const compiled = { query, body, pathParams, headers };
    this.#compiledRequests.set(operation, compiled);
    return compiled;
  }
}

function compileRoute(template: string): Route {
  const names: string[] = [];
  let literalSegments = 0;
  const pattern = template
    .split("/")
    .map((segment) => {
      if (!segment.includes("{")) {
        if (segment !== "") literalSegments += 1;
        return escapeRegex(segment);
      }
      return segment
        .split(/(\{[^}]+\})/)
        .map((part) => {
          const param = /^\{([^}]+)\}$/.exec(part);
          if (param?.[1] === undefined) return escapeRegex(part);
          names.push(param[1]);
          return "([^/]+?)";
        })
        .join("");
    })
    .join("/");
  return { template, regex: new RegExp(`^${pattern}$`), names, literalSegments, operations: new Map() };
}

const escapeRegex = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Single values stay scalars; repeated keys become lists (Twilio's `Filters=a&Filters=b`). */
function fieldsToObject(fields: ReadonlyMap<string, readonly string[]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, values] of fields) out[name] = values.length === 1 ? values[0] : [...values];
  return out;
}

function problemOf(
  validate: ValidateFunction,
  data: Record<string, unknown>,
  original: ReadonlyMap<string, readonly string[]>,
): RequestProblem | undefined {
  if (validate(data)) return undefined;
  const errors = validate.errors ?? [];
  const unknown = errors
    .filter((error) => error.keyword === "additionalProperties" && error.instancePath === "")
    .map((error) => String(error.params.additionalProperty));
  if (unknown.length > 0) return { kind: "unknown-parameters", names: [...new Set(unknown)] };
  const missing = errors.find((error) => error.keyword === "required" && error.instancePath === "");
  if (missing !== undefined)
    return { kind: "missing-parameter", name: String(missing.params.missingProperty) };
  const first = errors[0];
  const name = first === undefined ? "" : parameterName(first.instancePath);
  const got = original.get(name);
  const detail = `${describe(first === undefined ? [] : [first])}${got === undefined ? "" : ` (got ${JSON.stringify(got.length === 1 ? got[0] : got)})`}`;
  return { kind: "invalid-parameter", name, detail };
}

function parameterName(instancePath: string): string {
  const [, first = ""] = instancePath.split("/");
  return first.replaceAll("~1", "/").replaceAll("~0", "~");
}

function describe(errors: readonly ErrorObject[] | null | undefined): string {
  const first = errors?.[0];
  if (first === undefined) return "is invalid";
  if (first.keyword === "enum" && Array.isArray(first.params.allowedValues)) {
    return `must be one of ${first.params.allowedValues.join(", ")}`;
  }
  return first.message ?? "is invalid";
}

function listErrors(errors: readonly ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((error) => {
    const extra =
      error.keyword === "additionalProperties"
        ? ` '${String(error.params.additionalProperty)}'`
        : error.keyword === "enum" && Array.isArray(error.params.allowedValues)
          ? ` (${error.params.allowedValues.join(", ")})`
          : "";
    return `${error.instancePath || "(root)"} ${error.message ?? "is invalid"}${extra}`;
  });
}

let loaded: TwilioOpenApi | undefined;

/** The parsed specs and their validators, built once per process and shared by every emulator. */
export function loadTwilioOpenApi(): TwilioOpenApi {
  if (loaded !== undefined) return loaded;
  const started = performance.now();
  const conversations = readSpec(SpecIds.conversations);
  const api = readSpec(SpecIds.api);
  loaded = new TwilioOpenApi([conversations.spec, api.spec], {
    started,
    sources: { conversations_v1: conversations.source, api_v2010: api.source },
  });
  return loaded;
}
