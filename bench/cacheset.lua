-- wrk script: GraphQL cacheSet over POST with ttlSeconds 60, writing the
-- key in BENCH_SET_KEY (bench/run: "benchw", its write rows' own key, so
-- that the TTL never reaches the key the read rows use; "bench" when unset).
-- bench/run passes the ~100-byte object it seeded in BENCH_VALUE. Used by
-- bench/run; see bench/README.md.
local value = os.getenv("BENCH_VALUE")
if value == nil or value == "" then
  value = '{"id":4711,"name":"Ada Lovelace","class":"7B","roll":23,"fees":{"paid":true,"due":0},"tags":["bench"]}'
end
local key = os.getenv("BENCH_SET_KEY")
if key == nil or key == "" then
  key = "bench"
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- bench/run configures the service with this write-scope token (API_TOKENS).
local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
wrk.body = '{"query":"mutation($k:String!,$v:JSON!){cacheSet(key:$k,value:$v,ttlSeconds:60){stored}}",'
  .. '"variables":{"k":"' .. key .. '","v":' .. value .. '}}'
