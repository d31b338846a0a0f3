/** Any JSON value: what the cache stores (null included). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
