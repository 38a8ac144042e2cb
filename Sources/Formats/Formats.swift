// Placeholder until the Formats module lands (issue 3).
