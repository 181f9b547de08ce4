-- bench/wrk/infer_json.lua: a v2 JSON infer request for digits_mlp, batch 1.
-- The 64 values are a real "3" from scikit-learn's digits test split (the
-- fourth example of examples/digits_mlp/expected_outputs.json).
--   wrk -s bench/wrk/infer_json.lua http://HOST:PORT/v2/models/digits_mlp/infer
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs":[{"name":"input","shape":[1,64],"datatype":"FP32","data":['
  .. '0,0,6,14,16,16,2,0,0,5,16,13,11,16,0,0,0,0,7,2,15,12,0,0,0,0,0,7,16,13,1,0,'
  .. '0,0,0,0,6,15,10,0,0,0,0,0,0,15,9,0,0,0,3,11,8,16,6,0,0,0,7,16,16,8,0,0]}]}'

-- With WRK_CHECK=FILE in the environment, the first response (status line,
-- Inference-Header-Content-Length, body) goes to FILE: bench/run's check that
-- a server answers this very request correctly before it is timed.
local check = os.getenv("WRK_CHECK")
if check then
  local written = false
  function response(status, headers, body)
    if not written then
      written = true
      local hlen = ""
      for k, v in pairs(headers) do
        if k:lower() == "inference-header-content-length" then hlen = v end
      end
      local f = assert(io.open(check, "wb"))
      f:write(status, "\n", hlen, "\n", body)
      f:close()
    end
    wrk.thread:stop()
  end
end
