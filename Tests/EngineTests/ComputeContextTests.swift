import Engine
import Foundation
import NASCore
import TestSupport
import XCTest

/// The injected compute context: scoped, nested, per thread and per task, and two jobs with
/// different contexts running at once in one process each get the results they get alone.
final class ComputeContextTests: XCTestCase {
    func testScopedNestedAndRestored() throws {
        XCTAssertEqual(ComputeContext.current, ComputeContext.machine)
        ComputeContext(threads: 3).run {
            XCTAssertEqual(ComputeContext.current.threads, 3)
            ComputeContext(threads: 1).run { XCTAssertEqual(ComputeContext.current.threads, 1) }
            XCTAssertEqual(ComputeContext.current.threads, 3)
        }
        XCTAssertEqual(ComputeContext.current, ComputeContext.machine)
        XCTAssertEqual(ComputeContext(threads: 0).threads, 1, "at least one thread")
        XCTAssertEqual(ComputeContext(threads: 5).split(among: 2).threads, 2)
        XCTAssertEqual(ComputeContext(threads: 1).split(among: 4).threads, 1)
    }

    func testChildTasksInheritTheContext() async throws {
        let seen = await ComputeContext(threads: 7).run {
            await withTaskGroup(of: Int.self) { group in
                for _ in 0..<3 { group.addTask { ComputeContext.current.threads } }
                return await group.reduce(into: [Int]()) { $0.append($1) }
            }
        }
        XCTAssertEqual(seen, [7, 7, 7])
    }

    /// One training step's loss and gradients of a 28×28 CNN at batch 32 (large enough for the
    /// engine to split convolutions over threads).
    private static func step() throws -> (Float, [[Float]]) {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 28, width: 28))
        var x = g.add("conv1", .conv2d(Conv2dAttributes(outChannels: 16, kernel: 3, padding: 1)), g.input)
        x = g.add("bn1", .batchNorm(affine: true), x)
        x = g.add("relu1", .activation(.relu), x)
        x = g.add("conv2", .conv2d(Conv2dAttributes(outChannels: 32, kernel: 3, stride: 2, padding: 1)), x)
        x = g.add("relu2", .activation(.relu), x)
        x = g.add("gap", .globalAvgPool, x)
        g.add("fc", .linear(outFeatures: 10, bias: true), x)
        var rng = SeededGenerator(seed: 21)
        let network = try Network(graph: g, classCount: 10, rng: &rng)
        let input = Tensor(shape: [32, 1, 28, 28], values: (0..<(32 * 784)).map { _ in Float(rng.nextNormal()) })
        let labels = (0..<32).map { _ in Int32(rng.nextInt(below: 10)) }
        let (loss, _) = try network.lossAndGradients(input: input, labels: labels)
        return (loss, network.parameters.map(\.gradient))
    }

    func testConcurrentJobsKeepTheirOwnContextAndResults() throws {
        let alone1 = try ComputeContext(threads: 1).run { try Self.step() }
        let alone2 = try ComputeContext(threads: 2).run { try Self.step() }
        let failures = LockedList()
        let done = DispatchGroup()
        for threads in [1, 2] {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                ComputeContext(threads: threads).run {
                    for round in 0..<4 {
                        guard ComputeContext.current.threads == threads else {
                            failures.append("job \(threads): saw \(ComputeContext.current.threads) threads")
                            return
                        }
                        do {
                            let r = try Self.step()
                            let reference = threads == 1 ? alone1 : alone2
                            if r.0.bitPattern != reference.0.bitPattern || r.1 != reference.1 {
                                failures.append("job \(threads), round \(round): results differ from the job alone")
                            }
                        } catch {
                            failures.append("job \(threads): \(error)")
                        }
                    }
                }
            }
        }
        done.wait()
        XCTAssertEqual(failures.items, [])
        // Threads started outside a context start from the machine's.
        let outside = LockedList()
        let t = DispatchGroup()
        t.enter()
        ComputeContext(threads: 1).run {
            Thread.detachNewThread { outside.append("\(ComputeContext.current.threads)"); t.leave() }
        }
        t.wait()
        XCTAssertEqual(outside.items, ["\(ComputeContext.machine.threads)"])
    }
}

/// Strings appended from several threads.

/// `ComputeContext.parallelFor`: every iteration runs exactly once, on more than one thread when
/// the context has several, and jobs of two callers at once (one finds the pool busy and runs on
/// Dispatch) both complete.
final class ParallelForTests: XCTestCase {
    func testEveryIterationRunsOnceOnSeveralThreadsAndConcurrentCallersComplete() {
        final class Tally: @unchecked Sendable {
            let lock = NSLock()
            var counts: [Int]
            var threads = Set<UInt>()
            init(_ n: Int) { counts = [Int](repeating: 0, count: n) }
            func hit(_ i: Int) { lock.lock(); counts[i] += 1; threads.insert(UInt(bitPattern: Int(bitPattern: pthread_self()))); lock.unlock() }
            var started: Int { lock.lock(); defer { lock.unlock() }; return counts.reduce(0, +) }
        }
        for threads in [1, 2, 3] {
            for iterations in [0, 1, 2, 3, 7, 64] {
                let tally = Tally(iterations)
                let concurrent = threads >= 2 && (2...3).contains(iterations)
                ComputeContext(threads: threads).parallelFor(iterations: iterations) { i in
                    tally.hit(i)
                    // Iteration 0 waits until every other iteration has started: only other threads can start them.
                    guard concurrent, i == 0 else { return }
                    let deadline = Date().addingTimeInterval(10)
                    while tally.started < iterations, Date() < deadline { usleep(100) }
                }
                XCTAssertEqual(tally.counts, [Int](repeating: 1, count: iterations), "\(threads) threads, \(iterations) iterations")
                if threads == 1 { XCTAssertLessThanOrEqual(tally.threads.count, 1) }
                if concurrent {
                    XCTAssertGreaterThanOrEqual(tally.threads.count, 2, "\(threads) threads, \(iterations) iterations")
                    XCTAssertLessThanOrEqual(tally.threads.count, min(threads, iterations))
                }
            }
        }
        // Two callers at once, many small jobs each.
        let tallies = (0..<2).map { _ in Tally(16) }
        DispatchQueue.concurrentPerform(iterations: 2) { caller in
            for _ in 0..<500 {
                ComputeContext(threads: 2).parallelFor(iterations: 16) { i in tallies[caller].hit(i) }
            }
        }
        for tally in tallies { XCTAssertEqual(tally.counts, [Int](repeating: 500, count: 16)) }
    }
}
