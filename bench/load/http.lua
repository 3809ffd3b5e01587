-- wrk's script for the bench's HTTP workloads (bench/load/wrk.ts runs it):
--
--   wrk -t1 -c100 -d3s -s bench/load/http.lua http://127.0.0.1:P -- GET / 0 1
--   wrk -t1 -c100 -d3s -s bench/load/http.lua http://127.0.0.1:P -- POST /echo 32 16
--
-- Arguments after `--`: method, path, body bytes (0: none) and pipelining
-- depth. Each connection sends `depth` requests at once and the next batch
-- when all of them have been answered (wrk counts the requests in what
-- `request` returns). At depth 1 no `request` function is defined, so wrk
-- keeps its static request and calls no Lua per request. No `response`
-- function either: wrk would then copy every response's headers and body into
-- Lua. wrk itself counts statuses over 399 and socket errors; `done` prints
-- them, the counts and wrk's own CPU time as one JSON line for wrk.ts.
-- Not its latency: wrk corrects its latency histogram for coordinated
-- omission with the mean time per request, and a pipelined batch's latency
-- (one sample per batch) is `depth` such intervals, so the correction adds
-- about `depth` made-up samples per batch, and its percentile lookup then
-- misses the ones it put below the minimum (it returns 0).

local ffi = require("ffi")
ffi.cdef [[
  struct bench_timeval { long tv_sec; long tv_usec; };
  struct bench_rusage { struct bench_timeval ru_utime; struct bench_timeval ru_stime; long ru_rest[14]; };
  int getrusage(int who, struct bench_rusage *usage);
]]

function init(args)
  local method, path, bytes, depth = args[1], args[2], tonumber(args[3]), tonumber(args[4])
  if method == nil or path == nil or bytes == nil or depth == nil or depth < 1 then
    error("http.lua takes: method path body-bytes depth")
  end
  wrk.method = method
  wrk.path = path
  if bytes > 0 then
    -- 32 bytes of printable text, the same for every request.
    wrk.body = string.sub(string.rep("0123456789abcdef", math.ceil(bytes / 16)), 1, bytes)
    wrk.headers["Content-Type"] = "application/octet-stream"
  end
  if depth > 1 then
    local batch = string.rep(wrk.format(), depth)
    request = function()
      return batch
    end
  end
end

function done(summary, latency, requests)
  -- After every thread has been joined: RUSAGE_SELF covers them all.
  local usage = ffi.new("struct bench_rusage")
  ffi.C.getrusage(0, usage)
  local user = tonumber(usage.ru_utime.tv_sec) * 1e6 + tonumber(usage.ru_utime.tv_usec)
  local sys = tonumber(usage.ru_stime.tv_sec) * 1e6 + tonumber(usage.ru_stime.tv_usec)
  local e = summary.errors
  io.write(string.format(
    '\n{"type":"wrk-done","durationUs":%d,"requests":%d,"bytes":%d,"connectErrors":%d,"readErrors":%d,' ..
      '"writeErrors":%d,"timeouts":%d,"statusErrors":%d,"userUs":%d,"sysUs":%d}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status, user, sys))
end
