-- Runs health.lua against testdata/cases.lua, and checks that the argocd-cm snippet carries
-- health.lua verbatim for all three kinds. `lua5.4 config/argocd/health_test.lua`.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."

local function read(path)
  local f = assert(io.open(path, "r"))
  local text = f:read("a")
  f:close()
  return text
end

local script = read(dir .. "/health.lua")
local cases = dofile(dir .. "/testdata/cases.lua")
local failed = 0
for _, case in ipairs(cases) do
  local env = setmetatable({ obj = case.obj }, { __index = _G })
  local chunk = assert(load(script, "health.lua", "t", env))
  local hs = chunk()
  if hs.status ~= case.status or hs.message ~= case.message then
    failed = failed + 1
    print(string.format("FAIL %s: got %s %q, want %s %q", case.name,
      tostring(hs.status), tostring(hs.message), case.status, case.message))
  else
    print("ok   " .. case.name)
  end
end

local snippet = read(dir .. "/argocd-cm.yaml")
local indented = {}
for line in script:gmatch("(.-)\n") do
  if line == "" then
    indented[#indented + 1] = "\n"
  else
    indented[#indented + 1] = "    " .. line .. "\n"
  end
end
local block = table.concat(indented)
for _, kind in ipairs({ "LLMProvider", "LLMRoute", "LLMBudget" }) do
  local key = "resource.customizations.health.llm.tollgate.dev_" .. kind .. ": |\n"
  local at = snippet:find(key, 1, true)
  if at == nil or snippet:sub(at + #key, at + #key + #block - 1) ~= block then
    failed = failed + 1
    print("FAIL argocd-cm.yaml: " .. kind .. " does not carry health.lua verbatim")
  else
    print("ok   argocd-cm.yaml carries health.lua for " .. kind)
  end
end

print(string.format("%d passed, %d failed", #cases + 3 - failed, failed))
if failed > 0 then
  os.exit(1)
end
