-- bench/wrk/infer_binary.lua: the same digits_mlp request as infer_json.lua
-- in the binary tensor data extension: a JSON header declaring
-- binary_data_size 256, then the 64 values as little-endian float32, with
-- Inference-Header-Content-Length giving the header's length. It asks for
-- the output in binary too, as tritonclient's default infer() does.
--   wrk -s bench/wrk/infer_binary.lua http://HOST:PORT/v2/models/digits_mlp/infer
local pixels = {
  0, 0, 6, 14, 16, 16, 2, 0, 0, 5, 16, 13, 11, 16, 0, 0, 0, 0, 7, 2, 15, 12, 0, 0, 0, 0, 0, 7, 16,
  13, 1, 0, 0, 0, 0, 0, 6, 15, 10, 0, 0, 0, 0, 0, 0, 15, 9, 0, 0, 0, 3, 11, 8, 16, 6, 0, 0, 0, 7,
  16, 16, 8, 0, 0,
}

-- The 4 little-endian bytes of v as an IEEE-754 float32 (finite, normal
-- values; wrk's LuaJIT has no string.pack).
local function float32_le(v)
  if v == 0 then return "\0\0\0\0" end
  local sign = 0
  if v < 0 then sign, v = 1, -v end
  local m, e = math.frexp(v)                          -- v = m * 2^e, 0.5 <= m < 1
  local mant = math.floor((m * 2 - 1) * 2 ^ 23 + 0.5) -- 23 bits, implicit leading 1
  local bits = sign * 2 ^ 31 + (e + 126) * 2 ^ 23 + mant
  local out = {}
  for i = 1, 4 do
    out[i] = string.char(bits % 256)
    bits = math.floor(bits / 256)
  end
  return table.concat(out)
end

local blob = {}
for i, v in ipairs(pixels) do blob[i] = float32_le(v) end
blob = table.concat(blob)
assert(#blob == 256)

local header = '{"inputs":[{"name":"input","shape":[1,64],"datatype":"FP32",'
  .. '"parameters":{"binary_data_size":256}}],'
  .. '"outputs":[{"name":"scores","parameters":{"binary_data":true}}]}'

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = tostring(#header)
wrk.body = header .. blob

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
