-- wrk script: PUT of the ~100-byte value bench/run seeded (BENCH_VALUE) to
-- the Go reference handler (bench/reference), the counterpart of the
-- cacheSet row: the URL names the key (the write rows' own, as cacheSet's)
-- and a 60 s TTL. Used by bench/run; see bench/README.md.
local value = os.getenv("BENCH_VALUE")
if value == nil or value == "" then
  value = '{"id":4711,"name":"Ada Lovelace","class":"7B","roll":23,"fees":{"paid":true,"due":0},"tags":["bench"]}'
end
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
wrk.body = value
