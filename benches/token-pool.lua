-- Rotates the valid tokens of $LOAD_TOKENS (one per line), one per request,
-- so that a verified-token cache sees many distinct tokens. Requests are
-- formatted once per thread; each thread starts at its own offset.
local path = assert(os.getenv("LOAD_TOKENS"), "LOAD_TOKENS is not set")
local tokens = {}
for line in io.lines(path) do
    if #line > 0 then tokens[#tokens + 1] = line end
end
assert(#tokens > 0, "no tokens in " .. path)

local count = 0
function setup(thread)
    count = count + 1
    thread:set("offset", count * 7919)
end

local requests, next = {}, 1
function init(args)
    for i, token in ipairs(tokens) do
        requests[i] = wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. token })
    end
    next = (offset or 0) % #requests + 1
end

function request()
    local r = requests[next]
    next = next % #requests + 1
    return r
end
