-- Dataset: Healthy once a version is Ready; Progressing while it ingests (also when older versions
-- are already available); Degraded when ingestion or validation failed.
return slipway_health(obj, nil)
