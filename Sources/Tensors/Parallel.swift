import Dispatch

/// Runs `body(i)` for i in 0..<iterations on the cores of this process and returns when all are
/// done. Kernels use it to split rows; `body` must only write disjoint memory per `i`.
public func parallelFor(_ iterations: Int, _ body: (Int) -> Void) {
    if iterations <= 1 {
        for i in 0..<iterations { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        let box = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: iterations) { box.value($0) }
    }
}

/// Carries a value across a concurrency boundary whose safety the caller guarantees
/// (disjoint writes in `parallelFor`).
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
