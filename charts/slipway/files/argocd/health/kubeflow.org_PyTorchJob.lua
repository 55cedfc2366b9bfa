-- PyTorchJob (Training Operator v1, kubeflow.org/v1): conditions Created, Running, Restarting,
-- Succeeded, Failed and Suspended; replica counts per role in status.replicaStatuses.
local hs = {}
local status = obj.status or {}

local function condition(kind)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == kind and c.status == "True" then
      return c
    end
  end
  return nil
end

local function text(c, fallback)
  local message = c.message or ""
  if message == "" then
    message = c.reason or fallback
  end
  return message
end

local function replicas()
  local parts = {}
  for _, role in ipairs({"Master", "Worker"}) do
    local counts = (status.replicaStatuses or {})[role]
    if counts ~= nil then
      table.insert(parts, string.format(
        "%s %d active, %d succeeded, %d failed",
        role, counts.active or 0, counts.succeeded or 0, counts.failed or 0
      ))
    end
  end
  return table.concat(parts, "; ")
end

local failed = condition("Failed")
local succeeded = condition("Succeeded")
local suspended = condition("Suspended")
if failed ~= nil then
  hs.status = "Degraded"
  hs.message = text(failed, "PyTorchJob failed")
elseif succeeded ~= nil then
  hs.status = "Healthy"
  hs.message = text(succeeded, "PyTorchJob succeeded")
elseif suspended ~= nil then
  hs.status = "Suspended"
  hs.message = text(suspended, "PyTorchJob suspended")
else
  local current = condition("Restarting") or condition("Running") or condition("Created")
  hs.status = "Progressing"
  hs.message = (current and text(current, current.type)) or "Waiting for the Training Operator"
  local counts = replicas()
  if counts ~= "" then
    hs.message = hs.message .. " (" .. counts .. ")"
  end
end
return hs
