-- SeldonDeployment (Seldon Core v1): Seldon reports status.state Creating, Available or Failed,
-- with a description, and the replicas of each of its Deployments.
local hs = {}
local status = obj.status
if status == nil or status.state == nil or status.state == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for Seldon to report the deployment's state"
  return hs
end

local function replicas_text()
  local ready, wanted = 0, 0
  for _, deployment in pairs(status.deploymentStatus or {}) do
    ready = ready + (deployment.availableReplicas or 0)
    wanted = wanted + (deployment.replicas or 0)
  end
  if wanted == 0 then
    return nil
  end
  return string.format("%d/%d replicas available", ready, wanted)
end

local detail = status.description
if detail == nil or detail == "" then
  detail = replicas_text()
end
if status.state == "Available" then
  hs.status = "Healthy"
  hs.message = detail or "Available"
elseif status.state == "Failed" then
  hs.status = "Degraded"
  hs.message = detail or "Seldon reports the deployment Failed"
else
  hs.status = "Progressing"
  hs.message = status.state .. (detail and (": " .. detail) or "")
end
return hs
