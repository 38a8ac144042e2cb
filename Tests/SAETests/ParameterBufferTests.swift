import SAE
import Tensors
import Testing

/// The parameter buffer has value semantics like an array, also over node-shared memory: the one
/// value holding a shared buffer writes in place; a copy that is written becomes private and leaves
/// the shared memory as it was (folding the input scale into a saved copy must not rescale the
/// parameters being trained).
@Suite struct ParameterBufferTests {
    @Test func aSharedBufferIsWrittenInPlaceAndCopiedOnWriteWhenHeldTwice() throws {
        let memory = UnsafeMutableBufferPointer<Float>.allocate(capacity: 6)
        defer { memory.deallocate() }
        _ = memory.initialize(from: [1, 2, 3, 4, 5, 6])
        var a = ParameterBuffer(shared: memory.baseAddress!, count: 6)
        a[1] = 20
        a.replaceSubrange(4..<6, with: [50, 60] as [Float])
        #expect(Array(memory) == [1, 20, 3, 4, 50, 60] && a.isShared)
        var b = a
        b[0] = -1
        #expect(!b.isShared && a.isShared, "the written copy is private, the original still shared")
        #expect(Array(memory) == [1, 20, 3, 4, 50, 60] && Array(b) == [-1, 20, 3, 4, 50, 60])
        a.withUnsafeMutableBufferPointer { $0[2] = 30 }   // b no longer holds the storage
        #expect(memory[2] == 30 && b[2] == 3)
    }

    @Test func foldingTheInputScaleLeavesSharedParametersAlone() throws {
        let config = SAEConfig(architecture: .relu, dIn: 4, dSAE: 8, k: 0, l1: 1)
        var rng = Xoshiro256(seed: 3)
        let fresh = try SAE(config: config, rng: &rng)
        let n = fresh.params.count
        let memory = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
        defer { memory.deallocate() }
        _ = memory.initialize(from: fresh.params)
        let shared = try SAE(config: config, buffer: ParameterBuffer(shared: memory.baseAddress!, count: n))
        let folded = shared.foldingInputScale(2)
        #expect(Array(memory) == Array(fresh.params), "folding wrote into the shared parameters")
        #expect(folded.params != fresh.params && shared.params.isShared && !folded.params.isShared)
    }
}
