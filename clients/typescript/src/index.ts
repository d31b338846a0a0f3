export { CacheClient, RequestError, NetworkError, operationType } from './client.js';
export type { ClientOptions, RequestOptions, Result, Warning, GraphQLError } from './client.js';
export type { JsonValue } from './json.js';
export * from './generated.js';
