// Placeholder until the SAE module lands (issue 4).
