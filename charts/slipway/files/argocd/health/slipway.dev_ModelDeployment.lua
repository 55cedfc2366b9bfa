-- ModelDeployment: Healthy when the stable version serves (a static split included); Progressing
-- while versions start or a Canary, ABTest or Shadow rollout is under analysis; Suspended while a
-- rollout holds on a gate (confirm-rollout, confirm-promotion) or on inconclusive or unavailable
-- metrics; Degraded when a version failed or the last rollout of this spec was rolled back (with
-- the metric that failed in the message).

local function failed_metrics(rollout)
  local parts = {}
  for _, metric in ipairs(rollout.metrics or {}) do
    if metric.verdict == "Failed" then
      -- the operator's message names the metric, its value and the threshold it broke
      local text = metric.message or ""
      if text == "" then
        text = (metric.name or "metric") .. " = " .. tostring(metric.value)
      end
      table.insert(parts, text)
    end
  end
  return table.concat(parts, "; ")
end

local HOLDING_REASONS = {
  WaitingForConfirmation = "waiting for the confirm-rollout webhook",
  AnalysisUnavailable = "metrics unavailable",
  MetricQueryInvalid = "a metric query is refused",
}

local function rollout_health(status)
  local rollout = status.rollout
  if rollout == nil then
    return nil
  end
  local generation = obj.metadata and obj.metadata.generation
  local label = (rollout.strategy or "rollout") .. " of " .. (rollout.candidate or "the candidate")
  local said = rollout.message or ""
  if rollout.phase == "Failed" then
    -- a rollback is about the spec it was decided for: a newer spec starts afresh
    if rollout.generation ~= nil and generation ~= nil and rollout.generation < generation then
      return nil
    end
    local message = label .. " rolled back (" .. (rollout.reason or "Failed") .. ")"
    local metrics = failed_metrics(rollout)
    if metrics ~= "" then
      message = message .. ": " .. metrics
    elseif said ~= "" then
      message = message .. ": " .. said
    end
    if rollout.stable ~= nil then
      message = message .. "; " .. rollout.stable .. " keeps serving"
    end
    return {status = "Degraded", message = message}
  end
  if rollout.phase == "Holding" then
    return {status = "Suspended", message = label .. " holding on inconclusive checks: " .. said}
  end
  if rollout.phase == "WaitingPromotion" then
    return {status = "Suspended", message = label .. " waiting for confirm-promotion: " .. said}
  end
  local holding = HOLDING_REASONS[rollout.reason or ""]
  if holding ~= nil and (rollout.phase == "Waiting" or rollout.phase == "Progressing") then
    return {status = "Suspended", message = label .. " " .. holding .. ": " .. said}
  end
  return nil
end

return slipway_health(obj, rollout_health)
