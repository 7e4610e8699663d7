import CKernels
import Dispatch
import Foundation
import Synchronization

extension ComputeContext {
    /// Runs `body(i)` for every `i` in `0..<iterations` on the calling thread and this context's
    /// worker threads (``WorkerPool``; 1 thread: in order on the calling thread), and returns when
    /// all are done. The engine's one way to run work in parallel: each `i` must write its own part
    /// of the output, so that results do not depend on which thread runs which `i`.
    public func parallelFor(iterations: Int, _ body: (Int) -> Void) {
        if iterations <= 1 || threads == 1 {
            for i in 0..<max(0, iterations) { body(i) }
            return
        }
        if let pool = WorkerPool.shared(threads: threads), pool.run(iterations: iterations, body) { return }
        DispatchQueue.concurrentPerform(iterations: iterations, execute: body)
    }
}

/// ``ComputeContext/parallelFor(iterations:_:)`` of the current context.
@inline(__always)
func parallelFor(iterations: Int, _ body: (Int) -> Void) {
    ComputeContext.current.parallelFor(iterations: iterations, body)
}

/// `threads − 1` long-lived worker threads that, between jobs, **spin** for a short while
/// (``spinNanoseconds``) before sleeping. A batch-1 forward pass hands out dozens of small jobs of a
/// few microseconds to a few hundred each; waking a sleeping thread for each (what
/// `DispatchQueue.concurrentPerform` does once its threads have gone idle) costs tens of
/// microseconds on a virtual machine, and the cost varies with what the host is doing: measured
/// 2-thread latencies were slower than 1-thread ones and did not repeat. A spinning worker picks
/// up the next job within a fraction of a microsecond.
///
/// One pool per thread count in a process, used by one job at a time: a second job that finds it
/// busy (two concurrent jobs of a server with the same thread count) runs on
/// `DispatchQueue.concurrentPerform` instead, so nothing waits for the pool.
final class WorkerPool: @unchecked Sendable {
    /// How long an idle worker spins before it sleeps until the next job — when the pool has no
    /// more threads than the machine has processors; a larger pool never spins (spinning threads
    /// would take the processors the working ones need).
    static let spinNanoseconds: UInt64 = 200_000

    private static let pools = Mutex<[Int: WorkerPool]>([:])

    /// The pool of `threads` threads (created on first use); `nil` for fewer than 2.
    static func shared(threads: Int) -> WorkerPool? {
        guard threads >= 2 else { return nil }
        return pools.withLock { pools in
            if let pool = pools[threads] { return pool }
            let pool = WorkerPool(workers: threads - 1)
            pools[threads] = pool
            return pool
        }
    }

    private let workerCount: Int
    private let spinNanoseconds: UInt64
    /// Incremented (release) to publish a job; workers wait for it to change.
    private let generation = Atomic<Int>(0)
    /// The next iteration to hand out.
    private let next = Atomic<Int>(0)
    /// Workers still inside the current job.
    private let pending = Atomic<Int>(0)
    /// Set while a job runs (one job at a time).
    private let busy = Atomic<Bool>(false)
    /// The job: written before `generation` is published, read by workers after they see it.
    private nonisolated(unsafe) var job: ((Int) -> Void)?
    private nonisolated(unsafe) var jobIterations = 0
    /// A worker's sleep: `parked` while it sleeps (or is about to) on `wakeup`.
    private final class Sleep: Sendable {
        let parked = Atomic<Bool>(false)
        let wakeup = DispatchSemaphore(value: 0)
    }
    private let sleeps: [Sleep]

    private init(workers: Int) {
        workerCount = workers
        spinNanoseconds = workers + 1 <= ProcessInfo.processInfo.activeProcessorCount ? Self.spinNanoseconds : 0
        sleeps = (0..<workers).map { _ in Sleep() }
        for index in 0..<workers {
            let thread = Thread { [unowned self] in self.work(index) }
            thread.name = "naslab-worker-\(index + 1)"
            thread.start()
        }
    }

    /// Runs the job on this thread and the workers; `false` (nothing run) when the pool is busy.
    func run(iterations: Int, _ body: (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        withoutActuallyEscaping(body) { body in
            job = body
            jobIterations = iterations
            next.store(0, ordering: .relaxed)
            pending.store(workerCount, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            for sleep in sleeps where sleep.parked.exchange(false, ordering: .sequentiallyConsistent) {
                sleep.wakeup.signal()
            }
            drain(body, iterations: iterations)
            var spins = 0
            while pending.load(ordering: .acquiring) > 0 {
                spins += 1
                if spins < 1 << 16 { naslab_cpu_relax() } else { sched_yield() }
            }
            job = nil
        }
        busy.store(false, ordering: .releasing)
        return true
    }

    @inline(__always)
    private func drain(_ body: (Int) -> Void, iterations: Int) {
        while true {
            let i = next.add(1, ordering: .relaxed).oldValue
            if i >= iterations { return }
            body(i)
        }
    }

    /// The worker's share of the current job; every reference to the job is gone when it returns
    /// (the caller checks that the job did not escape once `pending` reaches 0).
    @inline(never)
    private func runJob() {
        var body = job
        if let body { drain(body, iterations: jobIterations) }
        body = nil
    }

    private func work(_ index: Int) {
        var seen = 0
        while true {
            var current = generation.load(ordering: .acquiring)
            var spinStart: UInt64 = 0
            var spins = 0
            while current == seen {
                spins += 1
                if spins & 255 != 0 && spinNanoseconds > 0 {
                    naslab_cpu_relax()
                } else {
                    let now = DispatchTime.now().uptimeNanoseconds
                    if spinStart == 0 { spinStart = now }
                    if now - spinStart >= spinNanoseconds {
                        // Sleep until a job is published (a job published between these two loads
                        // finds `parked` set and signals).
                        sleeps[index].parked.store(true, ordering: .sequentiallyConsistent)
                        if generation.load(ordering: .sequentiallyConsistent) == seen { sleeps[index].wakeup.wait() }
                        _ = sleeps[index].parked.exchange(false, ordering: .sequentiallyConsistent)
                        spinStart = 0
                    }
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            runJob()
            pending.subtract(1, ordering: .releasing)
        }
    }
}
