"""Running a causal language model: loading the base model, device and numeric precision,
and ``LMCandidate`` with the batched scoring primitives every suite relies on."""
