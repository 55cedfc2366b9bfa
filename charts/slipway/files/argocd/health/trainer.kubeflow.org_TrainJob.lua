-- TrainJob (Kubeflow Trainer v2, trainer.kubeflow.org/v1alpha1): its only conditions are
-- Suspended, Complete and Failed; whether it runs shows in status.jobsStatus (one entry per
-- replicated job, with active, ready, succeeded and failed counts).
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

local failed = condition("Failed")
local complete = condition("Complete")
local suspended = condition("Suspended")
if failed ~= nil then
  hs.status = "Degraded"
  hs.message = text(failed, "TrainJob failed")
elseif complete ~= nil then
  hs.status = "Healthy"
  hs.message = text(complete, "TrainJob completed")
elseif suspended ~= nil then
  hs.status = "Suspended"
  hs.message = text(suspended, "TrainJob suspended")
else
  local active, ready = 0, 0
  local jobs = {}
  for _, job in ipairs(status.jobsStatus or {}) do
    active = active + (job.active or 0)
    ready = ready + (job.ready or 0)
    table.insert(jobs, job.name or "?")
  end
  hs.status = "Progressing"
  if #jobs == 0 then
    hs.message = "Waiting for the TrainJob's jobs to start"
  else
    hs.message = string.format("%d active, %d ready in %s", active, ready, table.concat(jobs, ", "))
  end
end
return hs
