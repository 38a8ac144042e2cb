import CMalloc

/// Keeps freed heap memory in the process for the next allocation, as a training loop wants: every
/// step allocates and frees the same temporaries (tens of MB), and glibc by default hands large
/// blocks back to the kernel (mmap'd blocks, heap tops above 128 KB–32 MB), so each step pays page
/// faults and zero-filling for all of them again (~3% of an SAE step, measured). Blocks up to 32 MB (glibc's most)
/// come from the heap and a free never shrinks it; the resident set stays at the peak of one step.
/// Process-wide and idempotent; call once at start-up.
public func keepFreedHeapMemory() {
    _ = mallopt(M_MMAP_THRESHOLD, 32 << 20)
    _ = mallopt(M_TRIM_THRESHOLD, Int32.max)
}
