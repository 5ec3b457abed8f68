-- wrk (2 threads): POST unlock, each request a user from TOKENS_FILE (one token per line, subject
-- user-N) and a profile no request has unlocked before, so every request is a durable write.
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do tokens[#tokens + 1] = line end
local counter = 0
local thread_id = 0
function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
end
function request()
  counter = counter + 1
  -- Threads interleave over the users, so no two in-flight requests share a wallet.
  local token = tokens[((counter * 2 + id) % #tokens) + 1]
  local path = "/api/v1/creator/unlock/p" .. id .. "_" .. counter
  return wrk.format("POST", path, { ["Authorization"] = "Bearer " .. token }, nil)
end
function response(status, headers, body)
  if status ~= 200 then io.stderr:write("status " .. status .. ": " .. body .. "\n") end
end
