-- Status fixtures (as the operator writes them) and the health each must give.
local function cond(status, reason, message, gen)
  return { type = "Ready", status = status, reason = reason, message = message, observedGeneration = gen }
end
local function object(kind, generation, conditions, observed)
  local o = { apiVersion = "llm.tollgate.dev/v1alpha1", kind = kind,
              metadata = { name = "x", namespace = "default", generation = generation } }
  if conditions ~= nil then
    o.status = { conditions = conditions, observedGeneration = observed }
  end
  return o
end
return {
  { name = "route ready", obj = object("LLMRoute", 2, { cond("True", "Ready", "served by 2 of 2 gateway pods", 2) }, 2),
    status = "Healthy", message = "served by 2 of 2 gateway pods" },
  { name = "provider without status", obj = object("LLMProvider", 1, nil),
    status = "Progressing", message = "Waiting for the Tollgate operator to report status" },
  { name = "budget pending", obj = object("LLMBudget", 1, { cond("Unknown", "Pending", "not yet reconciled", 1) }, 1),
    status = "Progressing", message = "Pending: not yet reconciled" },
  { name = "stale generation", obj = object("LLMRoute", 5, { cond("True", "Ready", "ok", 4) }, 4),
    status = "Progressing", message = "Waiting for the operator to observe generation 5" },
  { name = "stale top-level observedGeneration", obj = object("LLMRoute", 3, { cond("True", "Ready", "ok") }, 2),
    status = "Progressing", message = "Waiting for the operator to observe generation 3" },
  { name = "provider secret missing", obj = object("LLMProvider", 1,
      { { type = "Accepted", status = "True", reason = "Accepted", observedGeneration = 1 },
        cond("False", "SecretNotFound", "Secret default/openai not found", 1) }, 1),
    status = "Degraded", message = "SecretNotFound: Secret default/openai not found" },
  { name = "no Ready condition", obj = object("LLMRoute", 1, { { type = "Accepted", status = "True", reason = "Accepted" } }, 1),
    status = "Progressing", message = "Waiting for the Ready condition" },
}
