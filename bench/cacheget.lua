-- wrk script: GraphQL cacheGet over POST of key "bench" (school-erp:bench in
-- Redis, seeded by bench/run), or of the key in BENCH_GET_KEY (bench/run
-- sets it for the rows with larger values). Used by bench/run; see
-- bench/README.md.
local key = os.getenv("BENCH_GET_KEY")
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
wrk.body = '{"query":"query($k:String!){cacheGet(key:$k)}","variables":{"k":"' .. key .. '"}}'
