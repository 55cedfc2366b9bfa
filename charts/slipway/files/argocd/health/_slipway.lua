-- Shared by the health checks of Slipway's own kinds (Dataset, TrainingJob, TuningSweep,
-- ModelDeployment). The snippet generator puts this text in front of each kind's script, because
-- an Argo CD health script cannot load another file. Every kind's status has Ready, Progressing
-- and Degraded conditions with observedGeneration, and a short phase; the checks read those first
-- and kind-specific fields only defensively, so an older or newer operator still gets a sensible
-- answer.

local function find_condition(status, kind)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == kind then
      return condition
    end
  end
  return nil
end

local function is_true(condition)
  return condition ~= nil and condition.status == "True"
end

local function describe(condition, fallback)
  if condition == nil then
    return fallback
  end
  local reason = condition.reason or ""
  local message = condition.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if message ~= "" then
    return message
  end
  if reason ~= "" then
    return reason
  end
  return fallback
end

local function number_text(value)
  if type(value) == "number" and value == math.floor(value) then
    return string.format("%d", value)
  end
  return tostring(value)
end

-- The status answers the spec the user sees only when the operator observed this generation.
local function stale_status(obj, status)
  local generation = obj.metadata and obj.metadata.generation
  if generation == nil then
    return nil
  end
  local observed = status.observedGeneration
  if observed == nil then
    local ready = find_condition(status, "Ready")
    observed = ready and ready.observedGeneration
  end
  if observed == nil then
    return "the operator has not reported on generation " .. number_text(generation) .. " yet"
  end
  if observed < generation then
    return "the operator has not reconciled generation " .. number_text(generation)
      .. " yet (status is for generation " .. number_text(observed) .. ")"
  end
  return nil
end

-- health(obj, special): special(status) may decide first (after the stale check and Degraded),
-- returning a {status, message} table, or nil to fall through to the conditions.
local function slipway_health(obj, special)
  local status = obj.status
  if status == nil or (status.conditions == nil and status.phase == nil) then
    return {status = "Progressing", message = "Waiting for the Slipway operator to report status"}
  end
  local stale = stale_status(obj, status)
  if stale ~= nil then
    return {status = "Progressing", message = stale}
  end
  local degraded = find_condition(status, "Degraded")
  if is_true(degraded) then
    return {status = "Degraded", message = describe(degraded, "Degraded")}
  end
  if special ~= nil then
    local decided = special(status)
    if decided ~= nil then
      return decided
    end
  end
  local ready = find_condition(status, "Ready")
  local progressing = find_condition(status, "Progressing")
  if is_true(progressing) then
    return {status = "Progressing", message = describe(progressing, status.phase or "Progressing")}
  end
  if is_true(ready) then
    return {status = "Healthy", message = (ready.message ~= "" and ready.message) or "Ready"}
  end
  if status.phase == "Failed" then
    return {status = "Degraded", message = describe(ready, "Failed")}
  end
  return {status = "Progressing", message = describe(ready, status.phase or "Not ready")}
end
