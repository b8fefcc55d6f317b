-- wrk script: one request per line of BENCH_LINES (never reused), stop after BENCH_MAX responses.
-- A line is tab-separated: zero or more "Name: value" headers, then the JSON body (last field).
-- BENCH_AUTH (optional) is sent as "Authorization: Bearer ...". Prints one JSON line from done().
-- Globals on purpose: done() reads them from each thread with thread:get().
-- A JSON answer's "result" (the webhook's updated/unchanged/...) is tallied too, so a row shows what it measured.
lines, index, responses, expected = {}, 0, 0, 0
codes, results = {}, {}
local max_responses = tonumber(os.getenv("BENCH_MAX") or "10000")
local expected_status = tonumber(os.getenv("BENCH_EXPECT") or "200")
local path = os.getenv("BENCH_PATH") or "/"
local auth = os.getenv("BENCH_AUTH")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("BENCH_LINES")) do
    local fields = {}
    for field in string.gmatch(line, "[^\t]+") do table.insert(fields, field) end
    local headers = {["Content-Type"] = "application/json"}
    if auth and auth ~= "" then headers["Authorization"] = "Bearer " .. auth end
    for i = 1, #fields - 1 do
      local name, value = string.match(fields[i], "^([^:]+):%s*(.*)$")
      headers[name] = value
    end
    table.insert(lines, wrk.format("POST", path, headers, fields[#fields]))
  end
end

function request()
  index = index + 1
  if index > #lines then
    -- Out of fresh bodies: stop this thread rather than reuse one (a reused code or event is another route).
    wrk.thread:stop()
    index = #lines
  end
  return lines[index]
end

function response(status, headers, body)
  responses = responses + 1
  if status == expected_status then expected = expected + 1 end
  local key = "s" .. status
  codes[key] = (codes[key] or 0) + 1
  local result = body and string.match(body, '"result":%s*"([%w_]+)"')
  if result then results[result] = (results[result] or 0) + 1 end
  if responses >= max_responses then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local ok, statuses, tally = 0, {}, {}
  for _, thread in ipairs(threads) do
    ok = ok + (thread:get("expected") or 0)
    local c = thread:get("codes") or {}
    for k, v in pairs(c) do statuses[#statuses + 1] = string.format('"%s":%d', string.sub(k, 2), v) end
    local r = thread:get("results") or {}
    for k, v in pairs(r) do tally[#tally + 1] = string.format('"%s":%d', k, v) end
  end
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"expected":%d,"p50_us":%d,"p99_us":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"statuses":{%s},"results":{%s}}\n',
    summary.requests, summary.duration, ok, latency:percentile(50), latency:percentile(99),
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    table.concat(statuses, ","), table.concat(tally, ",")))
end
