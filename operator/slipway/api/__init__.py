"""The Slipway API: pydantic models per version, and the generator that turns them into CRDs."""
