-- TrainingJob: Healthy once the model is exported (Succeeded); Progressing while it waits for its
-- Dataset or trains; Degraded when the run failed or the quality gate refused the model.
return slipway_health(obj, nil)
