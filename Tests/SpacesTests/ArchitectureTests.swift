import Foundation
import NASCore
import Spaces
import XCTest

final class ArchitectureTests: XCTestCase {
    func testTextRoundTripsForRandomArchitectures() throws {
        for name in ["small", "medium", "large", "nasbench201"] {
            let space = try loadSpace(name)
            var rng = SeededGenerator(seed: 11)
            for _ in 0..<1000 {
                let a = space.sample(using: &rng)
                XCTAssertEqual(space.canonical(a), a)
                let text = space.text(of: a)
                XCTAssertEqual(try space.parse(text), a, "\(name): \(text)")
                XCTAssertEqual(space.hash(of: a), stableHash(text))
                let json = try JSONEncoder().encode(a)
                XCTAssertEqual(try JSONDecoder().decode(Architecture.self, from: json), a)
            }
        }
        let fixed = try loadSpace("reference/resnet18")
        XCTAssertEqual(fixed.text(of: Architecture(choices: [])), "(fixed)")
        XCTAssertEqual(try fixed.parse("(fixed)"), Architecture(choices: []))
    }

    func testNASBench201StringsParse() throws {
        let space = try loadSpace("nasbench201")
        let best = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
        let a = try space.parse(best)
        XCTAssertEqual(space.text(of: a), best)
        // Option order is NB201's: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3; edges by target then source.
        XCTAssertEqual(a.choices, [3, 3, 3, 1, 3, 2])
        XCTAssertEqual(space.decisions.map(\.name),
                       ["cell.edge(1<-0)", "cell.edge(2<-0)", "cell.edge(2<-1)", "cell.edge(3<-0)", "cell.edge(3<-1)", "cell.edge(3<-2)"])
        for bad in ["|nor_conv_3x3~0|+|nor_conv_3x3~0|", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                    "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "stage=1"] {
            XCTAssertThrowsError(try space.parse(bad)) { XCTAssertTrue($0 is SpaceError, "\($0)") }
        }
    }

    func testEveryStringOfTheNASBench201TableParses() throws {
        let path = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/benchmarks/nasbench201/nats_bench_tss_200ep.csv").path
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("NAS-Bench-201 table not found at \(path)") }
        let space = try loadSpace("nasbench201")
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        let header = lines[0].split(separator: ",").map(String.init)
        let column = try XCTUnwrap(header.firstIndex(of: "ArchitectureString"))
        var seen = Set<Architecture>()
        for line in lines.dropFirst() {
            let text = String(line.split(separator: ",")[column])
            let a = try space.parse(text)
            XCTAssertEqual(space.text(of: a), text)
            seen.insert(a)
        }
        XCTAssertEqual(seen.count, 15_625)
    }

    func testInactiveDecisionsAreCanonicalised() throws {
        let space = try loadSpace("small")
        let names = space.decisions.map(\.name)
        XCTAssertEqual(names, ["stem.width", "stage1.depth", "stage1.width", "stage1.block0.op", "stage1.block0.kernel",
                               "stage1.block1.op", "stage1.block1.kernel", "stage2.depth", "stage2.width", "stage2.block0.op",
                               "stage2.block0.kernel", "stage2.block1.op", "stage2.block1.kernel"])
        // depth 1 (option 0) makes block1 inactive; op skip (option 3) makes its kernel inactive.
        let a = Architecture(choices: [1, 0, 1, 3, 1, 2, 1, 1, 0, 0, 1, 1, 1])
        XCTAssertFalse(space.isActive(4, in: a))
        XCTAssertFalse(space.isActive(5, in: a))
        XCTAssertTrue(space.isActive(10, in: a))
        XCTAssertEqual(space.canonical(a).choices, [1, 0, 1, 3, 0, 0, 0, 1, 0, 0, 1, 1, 1])
        XCTAssertEqual(space.text(of: a),
                       "stem.width=16 stage1.depth=1 stage1.width=24 stage1.block0.op=skip stage2.depth=2 stage2.width=32 "
                           + "stage2.block0.op=conv stage2.block0.kernel=5 stage2.block1.op=dsconv stage2.block1.kernel=5")
        XCTAssertEqual(space.activeChoices(of: a).map { "\($0.name)=\($0.option)" }.joined(separator: " "), space.text(of: a))
        XCTAssertThrowsError(try space.parse("stem.width=16 stage1.depth=1")) { error in
            XCTAssertTrue("\(error)".contains("missing decisions"), "\(error)")
        }
        XCTAssertThrowsError(try space.parse("stem.width=12")) { XCTAssertTrue("\($0)".contains("not an option"), "\($0)") }
    }

    func testSamplingAndMutationAreDeterministic() throws {
        for name in ["small", "medium", "large", "nasbench201"] {
            let space = try loadSpace(name)
            var r1 = SeededGenerator(seed: 42)
            var r2 = SeededGenerator(seed: 42)
            var r3 = SeededGenerator(seed: 43)
            let s1 = (0..<50).map { _ in space.sample(using: &r1) }
            let s2 = (0..<50).map { _ in space.sample(using: &r2) }
            let s3 = (0..<50).map { _ in space.sample(using: &r3) }
            XCTAssertEqual(s1, s2)
            XCTAssertNotEqual(s1, s3)
            let m1 = s1.map { space.mutate($0, using: &r1) }
            let m2 = s2.map { space.mutate($0, using: &r2) }
            XCTAssertEqual(m1, m2)
            for (a, m) in zip(s1, m1) {
                XCTAssertNotEqual(a, m, "a mutation changes the architecture")
                XCTAssertEqual(space.canonical(m), m)
                XCTAssertTrue(space.neighbours(of: a).contains(m), "a mutation is a neighbour")
            }
            let c1 = space.crossover(s1[0], s1[1], using: &r1)
            let c2 = space.crossover(s2[0], s2[1], using: &r2)
            XCTAssertEqual(c1, c2)
        }
    }

    func testNASBench201NeighboursAndUniformity() throws {
        let space = try loadSpace("nasbench201")
        let a = try space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
        XCTAssertEqual(space.neighbours(of: a).count, 6 * 4)
        var rng = SeededGenerator(seed: 5)
        var counts = [Int](repeating: 0, count: 5)
        for _ in 0..<5000 { counts[space.sample(using: &rng).choices[0]] += 1 }
        for c in counts { XCTAssertEqual(Double(c), 1000, accuracy: 150) }
    }

    func testUniformSamplingOverCanonicalArchitectures() throws {
        let space = try loadSpace("small")
        var rng = SeededGenerator(seed: 8)
        var again = SeededGenerator(seed: 8)
        var shallow = 0
        var perDecisionShallow = 0
        var perDecision = SeededGenerator(seed: 8)
        let samples = 4000
        for _ in 0..<samples {
            let a = space.sampleUniformly(using: &rng)
            XCTAssertEqual(a, space.sampleUniformly(using: &again))
            XCTAssertEqual(space.canonical(a), a)
            if a.choices[1] == 0 { shallow += 1 }
            if space.sample(using: &perDecision).choices[1] == 0 { perDecisionShallow += 1 }
        }
        // Of the 2·(7 + 49) settings of stage 1, 2·7 have depth 1: probability 1/8 (vs 1/2 per decision).
        XCTAssertEqual(Double(shallow) / Double(samples), 0.125, accuracy: 0.02)
        XCTAssertEqual(Double(perDecisionShallow) / Double(samples), 0.5, accuracy: 0.03)
        // Uniform over the enumeration: each op of a present block is drawn 2:2:2:1 (skip has no kernel).
        var skips = 0
        var presentBlocks = 0
        for _ in 0..<samples {
            let a = space.sampleUniformly(using: &rng)
            presentBlocks += 1
            if a.choices[3] == 3 { skips += 1 }
        }
        XCTAssertEqual(Double(skips) / Double(presentBlocks), 1.0 / 7.0, accuracy: 0.02)
    }

    func testBadArchitecturesAreRejectedWhenDecoding() throws {
        let space = try loadSpace("small")
        let shape = FeatureShape(channels: 1, height: 8, width: 8)
        XCTAssertThrowsError(try space.network(for: Architecture(choices: [0]), inputShape: shape, classCount: 10))
        var choices = Array(repeating: 0, count: space.decisions.count)
        choices[0] = 9
        XCTAssertThrowsError(try space.network(for: Architecture(choices: choices), inputShape: shape, classCount: 10))
        choices[0] = 0
        XCTAssertThrowsError(try space.network(for: Architecture(choices: choices), inputShape: shape, classCount: 0))
        XCTAssertNoThrow(try space.network(for: Architecture(choices: choices), inputShape: shape, classCount: 1))
    }

    func testBigUnsignedIntegerArithmetic() {
        XCTAssertEqual(BigUnsignedInteger(2).power(100).description, "1267650600228229401496703205376")
        XCTAssertEqual(BigUnsignedInteger(0).description, "0")
        XCTAssertEqual((BigUnsignedInteger(UInt64.max) + BigUnsignedInteger(1)).description, "18446744073709551616")
        XCTAssertEqual((BigUnsignedInteger(UInt64.max) * BigUnsignedInteger(UInt64.max)).description,
                       "340282366920938463426481119284349108225")
        XCTAssertEqual(BigUnsignedInteger(decimal: "1000000000000000000000")!, BigUnsignedInteger(10).power(21))
        XCTAssertEqual(BigUnsignedInteger(123_456_789).uint64Value, 123_456_789)
        XCTAssertNil(BigUnsignedInteger(2).power(70).uint64Value)
        XCTAssertLessThan(BigUnsignedInteger(10).power(20), BigUnsignedInteger(10).power(21))
        XCTAssertNil(BigUnsignedInteger(decimal: "12a"))
    }
}
