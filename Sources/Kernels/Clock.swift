#if canImport(Glibc)
import Glibc
#endif

/// Monotonic seconds (for timing steps, requests and benchmarks).
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
