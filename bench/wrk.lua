-- wrk script for make bench: `-- DEPTH` pipelines DEPTH requests per write (default 1:
-- wrk's own static request, one per write). `-- 1 TAG` asks for a path never asked before
-- with every request (the URL's path, then ?miss=TAG-THREAD-N), so every one is a cache
-- miss: TAG must be new for each run. `-- 1 objects=COUNT` asks for ?obj=N, N stepping
-- through all of 0..COUNT-1 (by 7919, a prime: rig.OBJECT_STRIDE, from where each thread
-- starts), the objects bench.py stored before. done() prints one JSON line that bench.py reads.

local threads = 0
setup = function(thread)
   threads = threads + 1
   thread:set("thread_id", threads)
end

init = function(args)
   local depth = tonumber(args[1] or "1")
   local objects = args[2] and tonumber(string.match(args[2], "^objects=(%d+)$"))
   if objects then
      local n = (thread_id * 977) % objects
      request = function()
         n = (n + 7919) % objects
         return wrk.format(nil, wrk.path .. "?obj=" .. n)
      end
   elseif args[2] then
      local prefix = string.format("%s?miss=%s-%d-", wrk.path, args[2], thread_id)
      local n = 0
      request = function()
         n = n + 1
         return wrk.format(nil, prefix .. n)
      end
   elseif depth > 1 then
      local r = {}
      for i = 1, depth do r[i] = wrk.format() end
      local batch = table.concat(r)
      request = function() return batch end
   end
end

done = function(summary, latency, requests)
   io.write(string.format(
      '{"requests": %d, "bytes": %d, "duration_us": %d, "errors_connect": %d, ' ..
      '"errors_read": %d, "errors_write": %d, "errors_status": %d, "errors_timeout": %d, ' ..
      '"p50_us": %d, "p99_us": %d}\n',
      summary.requests, summary.bytes, summary.duration, summary.errors.connect,
      summary.errors.read, summary.errors.write, summary.errors.status,
      summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
