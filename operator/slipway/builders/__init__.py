"""Pure builders: a validated custom resource in, child manifests out.

No I/O, no clock, no randomness: the same input always gives the same manifests, which is what
lets a reconcile be idempotent and lets tests compare against golden YAML.
"""
