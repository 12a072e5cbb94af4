-- Argo CD health of a FinancialAgent, from the conditions the operator keeps in its status.
--   Degraded:    the Degraded condition is True, or a revision failed and was rolled back
--                (the spec asks for something that is not running);
--   Healthy:     Ready is True for the spec the operator last saw;
--   Suspended:   reconciling is paused by the annotation finagent.io/pause-reconciliation;
--   Progressing: anything else (a rollout under way, or a spec the operator has not seen yet).
local health = { status = "Progressing", message = "Waiting for the operator to report" }
if obj.status == nil then
  return health
end
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "ReconciliationPaused" and condition.status == "True" then
      health.status = "Suspended"
      health.message = condition.message or "Reconciling is paused"
      return health
    end
  end
end
local generation = obj.metadata and obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  health.message = "The operator has not yet reconciled generation " .. tostring(generation)
  return health
end
local conditions = {}
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    conditions[condition.type] = condition
  end
end
local function describe(condition)
  return condition.message or condition.reason or condition.type
end
if conditions.Degraded ~= nil and conditions.Degraded.status == "True" then
  health.status = "Degraded"
  health.message = describe(conditions.Degraded)
  return health
end
if conditions.RolledBack ~= nil and conditions.RolledBack.status == "True" then
  health.status = "Degraded"
  health.message = "Rolled back: " .. describe(conditions.RolledBack)
  return health
end
if conditions.Ready ~= nil and conditions.Ready.status == "True" then
  health.status = "Healthy"
  health.message = describe(conditions.Ready)
  return health
end
if conditions.Progressing ~= nil then
  health.message = describe(conditions.Progressing)
end
return health
