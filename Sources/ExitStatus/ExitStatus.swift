// How nanosae's programs (sae-train, sae-run, sae-eval, sae-viz) end, in one place:
//   0  done
//   1  the run itself failed (a `FailureOfTheRun`: NaN loss, ranks out of lockstep, an output or
//      checkpoint that could not be written): a rerun may succeed, so the launchers restart it
//   2  bad input (every other error: a file, flag or config value to fix), which a rerun would
//      only repeat; also ArgumentParser's usage errors
// Each program prints one line on stderr, prefixed with its name (sae-run: "error:").

/// An error that is a failure of the run rather than of its input (exit status 1).
public protocol FailureOfTheRun: Error {}

/// A failure of the run itself, described in one sentence.
public struct RunFailure: FailureOfTheRun, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The exit status for a program that ends with `error`: 1 for a failure of the run, 2 for bad input.
public func exitStatus(for error: Error) -> Int32 {
    error is FailureOfTheRun ? 1 : 2
}
