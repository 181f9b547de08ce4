-- bench/wrk/infer_file.lua: a v2 binary-extension request read from a file:
-- BODY_FILE holds the JSON header followed by the tensor bytes, and
-- HEADER_LENGTH the header's length (both made by bench/sched_request.py).
--   BODY_FILE=... HEADER_LENGTH=... wrk -s bench/wrk/infer_file.lua URL
local f = assert(io.open(assert(os.getenv("BODY_FILE"), "BODY_FILE is not set"), "rb"))
local body = f:read("*all")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = assert(os.getenv("HEADER_LENGTH"))
wrk.body = body
