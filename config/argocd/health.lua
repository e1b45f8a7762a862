-- Argo CD health of an LLMProvider, LLMRoute or LLMBudget, from its Ready condition.
-- Healthy: Ready=True for the current generation. Progressing: no status yet, Ready
-- Unknown/Pending, or the operator has not seen the newest generation. Degraded: Ready=False
-- (the reason and message say why). Lua 5.1 compatible (Argo CD runs gopher-lua).
local hs = {}
local generation = obj.metadata and obj.metadata.generation
local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Tollgate operator to report status"
  return hs
end
local ready = nil
for _, c in ipairs(status.conditions) do
  if c.type == "Ready" then
    ready = c
  end
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
local observed = ready.observedGeneration or status.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local text = (ready.reason or "") .. ": " .. (ready.message or "")
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Ready"
elseif ready.status == "Unknown" or ready.reason == "Pending" then
  hs.status = "Progressing"
  hs.message = text
else
  hs.status = "Degraded"
  hs.message = text
end
return hs
