// A persistent pool of spinning worker threads (the caller is worker 0). About 0.1 us per dispatch
// against ~8 us for a mutex/condvar pool (PLATFORM.md); a decode step runs ~100 kernels, so this matters.
// Workers park on a condition variable after spinning idle for a while, so an idle server burns no CPU.
import CKernels
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The SIMD path the kernels run on this CPU (AVX-512 where present, else the AVX2 baseline), how the
/// AVX-512 row kernels decode Q4_0/Q5_0, their weight prefetch, and the int8 GEMM's tiles: AMX where
/// the CPU has it and Linux grants it, and if not, why not.
public var kernelPath: String {
    let tiles = String(cString: zk_gemm_tiles())
    let amx = tiles == "amx-int8" ? "" : ", no AMX: " + String(cString: zk_amx_status())
    let path = String(cString: zk_kernel_path())
    let decode = path == "avx2" ? "" : "Q4_0/Q5_0 decode " + String(cString: zk_row_decode()) + ", "
    return path + " (" + decode + "weight prefetch " + String(cString: zk_weight_prefetch()) + ", GEMM tiles " + tiles + amx + ")"
}

/// A unit of data-parallel work for `KernelPool.run`: a struct of pointers and sizes (no closures), so
/// a dispatch allocates nothing. The pool reads the job through a pointer to the caller's copy.
public protocol PoolJob {
    /// This thread's share of the work.
    func run(thread: Int, of threads: Int)
}

/// A job over `0..<count` for `KernelPool.parallelFor`, which gives each thread one or more ranges.
public protocol RangeJob {
    func run(_ range: Range<Int>, thread: Int)
}

extension PoolJob {
    static func invoke(_ job: UnsafeRawPointer, thread: Int, of threads: Int) {
        job.assumingMemoryBound(to: Self.self).pointee.run(thread: thread, of: threads)
    }
}

/// The first unit of thread t's share: `bounds[t]`, or with no bounds equal shares.
private func shareStart(_ t: Int, units: Int, of n: Int, _ bounds: UnsafePointer<Int>?) -> Int { bounds?[t] ?? units * t / n }

/// Splits `0..<count` (in units of `granularity`) into one contiguous share per thread (units
/// `shareStart(t)..<shareStart(t + 1)`), each claimed in `chunks` pieces from the front through the
/// share's cursor (`fronts`, a cache line apart): a thread takes its own share first, in order, then
/// what is left of the others'. With chunks > 1 a thread that runs slow (a busy sibling hyperthread,
/// another tenant, a preemption) holds up the dispatch by the chunk it is in, not by the rest of its
/// share; each chunk is one more call of the job, which memory-bound row kernels pay for (restarting
/// their stream: decode's layer products on an AMD Zen 3, 8 chunks a share, +8%), so they keep 1.
struct RangeSplit<J: RangeJob>: PoolJob {
    let count: Int, granularity: Int, chunks: Int, bounds: UnsafePointer<Int>?, fronts: UnsafeMutablePointer<Int64>, job: J
    func run(thread t: Int, of n: Int) {
        let units = (count + granularity - 1) / granularity
        for k in 0..<n {
            let owner = (t + k) % n
            let start = shareStart(owner, units: units, of: n, bounds), end = shareStart(owner + 1, units: units, of: n, bounds)
            let chunk = max(1, (end - start + chunks - 1) / chunks)
            let front = fronts + owner * KernelPool.frontStride
            // (Another thread's share is looked at before claiming: a finished share costs each late
            // thread a read of its line, not a write that takes the line from every other core.)
            while k == 0 || zk_peek(front) < Int64(end) {
                let lo = Int(zk_claim(front, Int64(chunk)))
                if lo >= end { break }
                job.run(lo * granularity..<min(count, min(end, lo + chunk) * granularity), thread: t)
            }
        }
    }
}

/// Adapts a closure (tests and cold paths): converting a non-escaping closure for the workers boxes
/// its context, one heap allocation per dispatch, so hot paths use `RangeJob` structs instead.
private struct ClosureJob: PoolJob {
    let body: (Int, Int) -> Void
    func run(thread: Int, of threads: Int) { body(thread, threads) }
}

private struct ClosureRangeJob: RangeJob {
    let body: (Range<Int>, Int) -> Void
    func run(_ range: Range<Int>, thread: Int) { body(range, thread) }
}

/// Runs data-parallel kernels on `threadCount` threads. Concurrent callers are serialised (a lock held
/// for the whole `run`); nested `run` calls from inside a job are not allowed.
public final class KernelPool: @unchecked Sendable {
    public let threadCount: Int
    private let generation = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var runLock = pthread_mutex_t()
    // The job of the current generation (a pointer to the caller's copy, and its type); written by the
    // caller before the generation is published, valid until every worker has finished.
    private var job: UnsafeRawPointer?
    private var jobType: (any PoolJob.Type)?
    private var threads: [pthread_t] = []
    /// `RangeSplit`'s cursors, one a thread, `frontStride` apart (a cache line each: a claim is an
    /// uncontended atomic add until a thread steals).
    static let frontStride = 8
    private let fronts: UnsafeMutablePointer<Int64>
    /// Spins (~10 us) after which a waiting thread yields its core on every further spin: on a
    /// machine shared with the HTTP loop, clients or other processes, a preempted worker then gets the
    /// core its waiting partner would otherwise burn (a step of ~500 dispatches took seconds instead of
    /// ~0.5 s when one worker was preempted with the others spinning). A yield with nothing else to run
    /// returns at once.
    private let yieldAfter = 4_000
    /// Spins before a worker parks: the pauses, then ~200 yields (~100-200 us in all).
    private let spinLimit = 4_200

    /// `threads`: worker count including the caller; default `ZEBRA_THREADS` or the number of cores.
    public init(threads: Int? = nil) {
        let env = getenv("ZEBRA_THREADS").flatMap { Int(String(cString: $0)) }
        let n = max(1, threads ?? env ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        threadCount = n
        fronts = UnsafeMutableRawPointer(aligned_alloc(64, n * KernelPool.frontStride * 8)!).bindMemory(to: Int64.self, capacity: n * KernelPool.frontStride)
        pthread_mutex_init(&mutex, nil)
        pthread_mutex_init(&runLock, nil)
        pthread_cond_init(&cond, nil)
        for i in 1..<n {
            let box = Unmanaged.passRetained(WorkerBox(pool: self, index: i))
            var t = pthread_t()
            let rc = pthread_create(&t, nil, { arg in
                let box = Unmanaged<WorkerBox>.fromOpaque(arg!).takeRetainedValue()
                box.pool?.workerLoop(box.index)
                return nil
            }, box.toOpaque())
            precondition(rc == 0, "pthread_create failed")
            self.threads.append(t)
        }
    }

    deinit { free(fronts) }

    /// Stops and joins the workers. The pool cannot be used afterwards.
    public func shutdown() {
        guard !threads.isEmpty else { return }
        stopping.store(true, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(&mutex)
        pthread_cond_broadcast(&cond)
        pthread_mutex_unlock(&mutex)
        for t in threads { pthread_join(t, nil) }
        threads = []
    }

    /// Runs `job.run(thread:of:)` on every thread and returns when all have finished. Allocates nothing.
    public func run<J: PoolJob>(_ job: J) {
        if threadCount == 1 { job.run(thread: 0, of: 1); return }
        withUnsafePointer(to: job) { dispatch(UnsafeRawPointer($0), J.self) }
    }

    /// Runs `body(threadIndex, threadCount)` on every thread (one heap allocation; see `ClosureJob`).
    public func run(_ body: (Int, Int) -> Void) {
        withoutActuallyEscaping(body) { run(ClosureJob(body: $0)) }
    }

    /// `shares`: a `RangeSplit` over that many units (shares at `bounds`), whose cursors start at each
    /// thread's share.
    private func dispatch(_ pointer: UnsafeRawPointer, _ type: any PoolJob.Type, shares units: Int = 0,
                          bounds: UnsafePointer<Int>? = nil) {
        pthread_mutex_lock(&runLock)
        defer { pthread_mutex_unlock(&runLock) }
        // (Published to the workers with the generation.)
        for t in 0..<(units > 0 ? threadCount : 0) {
            fronts[t * KernelPool.frontStride] = Int64(shareStart(t, units: units, of: threadCount, bounds))
        }
        job = pointer
        jobType = type
        remaining.store(threadCount - 1, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(&mutex)
            pthread_cond_broadcast(&cond)
            pthread_mutex_unlock(&mutex)
        }
        type.invoke(pointer, thread: 0, of: threadCount)
        var spins = 0
        while remaining.load(ordering: .acquiring) > 0 {
            spins += 1
            if spins < yieldAfter { zk_pause() } else { sched_yield() }
        }
        job = nil
        jobType = nil
    }

    /// Runs `job.run(range, thread:)` over `0..<count` in ranges aligned to `granularity`: each thread
    /// its own contiguous share, claimed in `chunks` ranges, then what is left of the others'
    /// (`RangeSplit`). Allocates nothing.
    public func parallelFor<J: RangeJob>(_ count: Int, granularity: Int = 1, chunks: Int = 1, _ job: J) {
        if count <= 0 { return }
        let units = (count + granularity - 1) / granularity
        if threadCount == 1 || units == 1 { job.run(0..<count, thread: 0); return }
        let split = RangeSplit(count: count, granularity: granularity, chunks: max(1, chunks), bounds: nil, fronts: fronts, job: job)
        withUnsafePointer(to: split) { dispatch(UnsafeRawPointer($0), RangeSplit<J>.self, shares: units) }
    }

    /// `parallelFor` with each thread's share given: `bounds[t]..<bounds[t + 1]` (threadCount + 1
    /// nondecreasing entries from 0 to `count`), e.g. equal in cost rather than in count.
    /// Each share is one call; an idle thread takes a share not yet started.
    public func parallelFor<J: RangeJob>(_ count: Int, bounds: UnsafePointer<Int>, _ job: J) {
        if count <= 0 { return }
        if threadCount == 1 || count == 1 { job.run(0..<count, thread: 0); return }
        let split = RangeSplit(count: count, granularity: 1, chunks: 1, bounds: bounds, fronts: fronts, job: job)
        withUnsafePointer(to: split) { dispatch(UnsafeRawPointer($0), RangeSplit<J>.self, shares: count, bounds: bounds) }
    }

    /// `parallelFor` with a closure `body(range, threadIndex)` (one heap allocation per call).
    public func parallelFor(_ count: Int, granularity: Int = 1, chunks: Int = 1, _ body: (Range<Int>, Int) -> Void) {
        withoutActuallyEscaping(body) { parallelFor(count, granularity: granularity, chunks: chunks, ClosureRangeJob(body: $0)) }
    }

    fileprivate func workerLoop(_ index: Int) {
        var seen = 0
        while true {
            var spins = 0
            var gen = generation.load(ordering: .acquiring)
            while gen == seen {
                spins += 1
                if spins < yieldAfter {
                    zk_pause()
                } else if spins < spinLimit {
                    sched_yield()
                } else {
                    pthread_mutex_lock(&mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while generation.load(ordering: .sequentiallyConsistent) == seen {
                        pthread_cond_wait(&cond, &mutex)
                    }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(&mutex)
                    spins = 0
                }
                gen = generation.load(ordering: .acquiring)
            }
            seen = gen
            if stopping.load(ordering: .sequentiallyConsistent) { return }
            if let job, let jobType { jobType.invoke(job, thread: index, of: threadCount) }
            remaining.subtract(1, ordering: .releasing)
        }
    }
}

private final class WorkerBox {
    weak var pool: KernelPool?
    let index: Int
    init(pool: KernelPool, index: Int) { self.pool = pool; self.index = index }
}
