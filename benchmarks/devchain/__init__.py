"""`make bench-dev`: the local chain timed from `slipway dev up` to a prediction and a canary."""
