-- Katib Experiment (kubeflow.org/v1beta1): conditions Created, Running, Restarting, Succeeded,
-- Failed; the best trial so far in status.currentOptimalTrial.
local hs = {}
local status = obj.status

local function condition(kind)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind and c.status == "True" then
      return c
    end
  end
  return nil
end

local function text(c, fallback)
  local message = (c and c.message) or ""
  if message == "" then
    message = (c and c.reason) or fallback
  end
  return message
end

local function best()
  local optimal = status.currentOptimalTrial
  if optimal == nil or optimal.bestTrialName == nil or optimal.bestTrialName == "" then
    return ""
  end
  local parts = {}
  for _, metric in ipairs((optimal.observation and optimal.observation.metrics) or {}) do
    table.insert(parts, (metric.name or "?") .. "=" .. tostring(metric.latest))
  end
  local summary = "; best trial " .. optimal.bestTrialName
  if #parts > 0 then
    summary = summary .. " (" .. table.concat(parts, ", ") .. ")"
  end
  return summary
end

local function trials()
  return string.format(
    "%d trials: %d running, %d succeeded, %d failed",
    status.trials or 0, status.trialsRunning or 0, status.trialsSucceeded or 0,
    status.trialsFailed or 0
  )
end

if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for Katib to report the experiment"
  return hs
end
local failed = condition("Failed")
local succeeded = condition("Succeeded")
if failed ~= nil then
  hs.status = "Degraded"
  hs.message = text(failed, "Experiment failed") .. best()
elseif succeeded ~= nil then
  hs.status = "Healthy"
  hs.message = text(succeeded, "Experiment succeeded") .. best()
else
  local current = condition("Restarting") or condition("Running") or condition("Created")
  hs.status = "Progressing"
  hs.message = text(current, "Experiment starting") .. "; " .. trials() .. best()
end
return hs
