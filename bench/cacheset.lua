-- wrk script: GraphQL cacheSet over POST, writing key "bench" (the key the
-- cacheGet rows read) with a small JSON value and ttlSeconds 60. bench/run
-- passes the value it seeded in BENCH_VALUE so that every row reads and
-- writes the same ~100-byte object. Used by bench/run; see bench/README.md.
local value = os.getenv("BENCH_VALUE")
if value == nil or value == "" then
  value = '{"id":4711,"name":"Ada Lovelace","class":"7B","roll":23,"fees":{"paid":true,"due":0},"tags":["bench"]}'
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- bench/run configures the service with this write-scope token (API_TOKENS).
local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
wrk.body = '{"query":"mutation($k:String!,$v:JSON!){cacheSet(key:$k,value:$v,ttlSeconds:60){stored}}",'
  .. '"variables":{"k":"bench","v":' .. value .. '}}'
