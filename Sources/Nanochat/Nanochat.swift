// Placeholder until the Nanochat module lands (issue 3).
