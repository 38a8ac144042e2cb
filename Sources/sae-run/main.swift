import Foundation

// Entry point: parse, run, and map every error to DESIGN 4's exit statuses
// (0 success, 2 bad input with one line on stderr, 1 a failure of the run).
exit(SAERun.main(arguments: Array(CommandLine.arguments.dropFirst())))
