-- TuningSweep: Healthy once the sweep finished with a best trial and its model; Progressing while
-- trials run; Degraded when the experiment failed or its results cannot be read.
return slipway_health(obj, nil)
