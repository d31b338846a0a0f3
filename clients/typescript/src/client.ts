// A small typed client for the cache service's GraphQL API.
//
// What it does beyond sending a request:
//   - tokens: `Authorization: Bearer <token>` on every request;
//   - warnings: `extensions.warnings` (a read Redis could not answer, a
//     value served from the fallback tier) come back as `result.warnings`;
//   - partial results: a response with data is returned, with its per-field
//     errors in `result.errors`, never thrown; only a request refused as a
//     whole (no data at all) throws a RequestError;
//   - retries of reads only: a query is sent again after a network error or
//     HTTP 502/503/504 (OVERLOADED, DEADLINE_EXCEEDED), with jittered
//     exponential backoff (and at least the server's Retry-After); a
//     mutation is sent once, never again, since a write the network lost may
//     have been applied.

import type { TypedDocumentString } from './generated.js';
import * as ops from './generated.js';
import type { JsonValue } from './json.js';

/** A warning from `extensions.warnings`: the field's value stands in for an answer Redis could not give. */
export interface Warning {
  /** REDIS_UNAVAILABLE, NO_REPLY or SERVED_FROM_MEMORY. */
  code: string;
  message: string;
  /** The field (alias or name) and, for cacheGetMany, the key's index. */
  path: Array<string | number>;
}

/** An error from the response's `errors`. */
export interface GraphQLError {
  message: string;
  path?: Array<string | number>;
  locations?: Array<{ line: number; column: number }>;
  extensions?: { code?: string; [key: string]: unknown };
}

/** What a request answered: data, possibly partial, with its errors and warnings. */
export interface Result<TData> {
  /** The data; fields that failed are null and have an error in `errors`. */
  data: TData;
  /** Per-field errors (BAD_USER_INPUT, FORBIDDEN, REDIS_REJECTED, ...), each with its path; empty when none. */
  errors: GraphQLError[];
  /** `extensions.warnings`; empty when none. */
  warnings: Warning[];
  /** The response's other extensions, if any. */
  extensions: Record<string, unknown>;
  /** HTTP status of the answer. */
  status: number;
  /** How many times the request was sent (more than 1 only for a retried query). */
  attempts: number;
}

/** The service refused the request as a whole: nothing ran (no data). */
export class RequestError extends Error {
  /** The code of the first error (UNAUTHENTICATED, GRAPHQL_VALIDATION_FAILED, OVERLOADED, ...), if any. */
  readonly code: string | undefined;
  constructor(
    readonly status: number,
    readonly errors: GraphQLError[],
    readonly attempts: number,
  ) {
    super(`${errors[0]?.message ?? 'request refused'} (HTTP ${status}${errors[0]?.extensions?.code ? ', ' + errors[0].extensions.code : ''})`);
    this.name = 'RequestError';
    this.code = errors[0]?.extensions?.code;
  }
}

/** No answer came: the network failed, the body was not a GraphQL response, or the attempt timed out. */
export class NetworkError extends Error {
  constructor(
    message: string,
    /** True for a mutation: it may or may not have been applied (it is not sent again). */
    readonly mayHaveApplied: boolean,
    readonly attempts: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'NetworkError';
  }
}

export interface ClientOptions {
  /** The GraphQL endpoint, for example http://localhost:5000/graphql. */
  url: string;
  /** An API token (API_TOKENS): sent as `Authorization: Bearer <token>`. A function is asked before every attempt, so a token can rotate. */
  token?: string | (() => string | Promise<string>);
  /** How many times a query is sent again after a network error or 502/503/504 (default 3). Mutations are never sent again. */
  retries?: number;
  /** First wait before a retry, in ms (default 100); it doubles each time, jittered between half and all of it. */
  backoffMs?: number;
  /** Cap on that wait, in ms (default 2000). */
  maxBackoffMs?: number;
  /** Time one attempt may take, in ms (default 10000). */
  timeoutMs?: number;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  /** Cancels the request, retries included. */
  signal?: AbortSignal;
}

const RETRY_STATUSES = new Set([502, 503, 504]);

/** A client of the cache service. Each method is one operation of clients/operations.graphql. */
export class CacheClient {
  private readonly url: string;
  private readonly token: ClientOptions['token'];
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly timeoutMs: number;
  private readonly fetchFn: typeof fetch;

  constructor(options: ClientOptions) {
    this.url = options.url;
    this.token = options.token;
    this.retries = options.retries ?? 3;
    this.backoffMs = options.backoffMs ?? 100;
    this.maxBackoffMs = options.maxBackoffMs ?? 2000;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.fetchFn = options.fetch ?? globalThis.fetch;
  }

  /**
   * Runs one operation. Resolves with the data whenever the response has
   * some, partial or not; rejects with RequestError when the service
   * refused the request as a whole, and NetworkError when no answer came.
   */
  async request<TData, TVariables>(
    document: TypedDocumentString<TData, TVariables>,
    variables: TVariables,
    options: RequestOptions = {},
  ): Promise<Result<TData>> {
    const query = document.toString();
    const isQuery = operationType(query) === 'query';
    const body = JSON.stringify({ query, variables });
    for (let attempt = 1; ; attempt++) {
      const canRetry = isQuery && attempt <= this.retries && !options.signal?.aborted;
      let response: Response;
      let text: string;
      try {
        ({ response, text } = await this.send(body, options.signal));
      } catch (cause) {
        if (options.signal?.aborted) throw cause;
        if (canRetry) {
          await sleep(this.backoff(attempt, undefined), options.signal);
          continue;
        }
        throw new NetworkError(
          `no answer from ${this.url}: ${errorMessage(cause)}${isQuery ? '' : ' (the mutation may or may not have been applied; it is not sent again)'}`,
          !isQuery,
          attempt,
          { cause },
        );
      }
      if (canRetry && RETRY_STATUSES.has(response.status)) {
        await sleep(this.backoff(attempt, response.headers.get('retry-after')), options.signal);
        continue;
      }
      return this.result<TData>(response, text, attempt, isQuery);
    }
  }

  private async send(body: string, signal: AbortSignal | undefined): Promise<{ response: Response; text: string }> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json;q=0.9',
    };
    const token = typeof this.token === 'function' ? await this.token() : this.token;
    if (token) headers.authorization = `Bearer ${token}`;
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const response = await this.fetchFn(this.url, {
      method: 'POST',
      headers,
      body,
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    return { response, text: await response.text() };
  }

  private result<TData>(response: Response, text: string, attempts: number, isQuery: boolean): Result<TData> {
    let parsed: { data?: TData | null; errors?: GraphQLError[]; extensions?: Record<string, unknown> };
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      // A proxy's error page, say: the service may still have run it.
      throw new NetworkError(`HTTP ${response.status} from ${this.url} is not a GraphQL response`, !isQuery, attempts, { cause });
    }
    const errors = parsed.errors ?? [];
    // No data entry (or data null before anything ran): refused as a whole.
    if (parsed.data === undefined || parsed.data === null) {
      throw new RequestError(response.status, errors, attempts);
    }
    const { warnings, ...extensions } = parsed.extensions ?? {};
    return {
      data: parsed.data,
      errors,
      warnings: Array.isArray(warnings) ? (warnings as Warning[]) : [],
      extensions,
      status: response.status,
      attempts,
    };
  }

  /** The wait before retry number `attempt`: jittered exponential backoff, at least Retry-After. */
  private backoff(attempt: number, retryAfter: string | null | undefined): number {
    const ceiling = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (attempt - 1));
    const wait = ceiling / 2 + Math.random() * (ceiling / 2);
    const seconds = retryAfter ? Number(retryAfter) : NaN;
    return Number.isFinite(seconds) && seconds >= 0 ? Math.max(wait, Math.min(seconds * 1000, this.maxBackoffMs)) : wait;
  }

  // One method per operation of clients/operations.graphql.

  redisHealth(options?: RequestOptions) {
    return this.request(ops.RedisHealthDocument, {}, options);
  }
  cacheGet(key: string, options?: RequestOptions) {
    return this.request(ops.CacheGetDocument, { key }, options);
  }
  cacheGetMany(keys: string[], options?: RequestOptions) {
    return this.request(ops.CacheGetManyDocument, { keys }, options);
  }
  cacheExists(key: string, options?: RequestOptions) {
    return this.request(ops.CacheExistsDocument, { key }, options);
  }
  cacheEntry(key: string, options?: RequestOptions) {
    return this.request(ops.CacheEntryDocument, { key }, options);
  }
  /** Stores value (any JSON, null included) at key. */
  cacheSet(key: string, value: JsonValue, args: Omit<ops.CacheSetMutationVariables, 'key' | 'value'> = {}, options?: RequestOptions) {
    return this.request(ops.CacheSetDocument, { ...args, key, value }, options);
  }
  cacheFetch(key: string, leaseSeconds: number, args: { waitMs?: number } = {}, options?: RequestOptions) {
    return this.request(ops.CacheFetchDocument, { ...args, key, leaseSeconds }, options);
  }
  cacheSetMany(entries: Array<ops.CacheSetInput & { value: JsonValue }>, options?: RequestOptions) {
    return this.request(ops.CacheSetManyDocument, { entries }, options);
  }
  cacheDeleteMany(keys: string[], options?: RequestOptions) {
    return this.request(ops.CacheDeleteManyDocument, { keys }, options);
  }
  cacheIncrement(key: string, args: Omit<ops.CacheIncrementMutationVariables, 'key'> = {}, options?: RequestOptions) {
    return this.request(ops.CacheIncrementDocument, { ...args, key }, options);
  }
  /** Sets key's TTL, or removes it when ttlSeconds is omitted or null. */
  cacheExpire(key: string, ttlSeconds?: number | null, options?: RequestOptions) {
    return this.request(ops.CacheExpireDocument, { key, ttlSeconds }, options);
  }
  cacheInvalidateTags(tags: string[], options?: RequestOptions) {
    return this.request(ops.CacheInvalidateTagsDocument, { tags }, options);
  }
  cacheDelete(key: string, options?: RequestOptions) {
    return this.request(ops.CacheDeleteDocument, { key }, options);
  }
}

/** The type of a document's operation: the keyword of its first top-level definition that is not a fragment ("{" alone is a query). */
export function operationType(document: string): 'query' | 'mutation' | 'subscription' {
  // Strings and comments may hold anything; braces and keywords outside them
  // are what count.
  const text = document.replace(/"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"|#[^\n\r]*/g, ' ');
  let depth = 0;
  let inFragment = false;
  for (const [token] of text.matchAll(/[{}]|[A-Za-z_][A-Za-z0-9_]*/g)) {
    if (token === '{') {
      if (depth === 0 && !inFragment) return 'query'; // the shorthand form
      depth++;
    } else if (token === '}') {
      if (--depth === 0) inFragment = false;
    } else if (depth === 0 && !inFragment) {
      if (token === 'query' || token === 'mutation' || token === 'subscription') return token;
      if (token === 'fragment') inFragment = true;
    }
  }
  return 'query';
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
  }
  return String(err);
}
