import Foundation

extension ExperimentConfig {
    /// The complete config as YAML, every default written out: what a record stores, so that a
    /// resumed or reproduced run uses exactly these settings. `parse(yaml: c.yamlText)` equals `c`.
    public var yamlText: String {
        func q(_ s: String) -> String {
            let plain = !s.isEmpty && s.allSatisfy { $0.isLetter || $0.isNumber || "-_./".contains($0) }
                && Double(s) == nil && !["true", "false", "yes", "no", "on", "off", "null", "~"].contains(s.lowercased())
            if plain { return s }
            return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        func n(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)" }
        var lines = [
            "# Effective NASLab experiment config (all defaults written out).",
            "name: \(q(name))",
            "seed: \(seed)",
            "space: \(q(space))",
            "dataset: \(q(dataset))",
            "task_type: \(taskType)",
            "validation_split: \(validationSplit)",
            "workers: \(workers)",
            "threads: \(threads)",
        ]
        if let output { lines.append("output: \(q(output))") }
        lines += [
            "searcher:",
            "  kind: \(searcher.kind)",
            "  population_size: \(searcher.populationSize)",
            "  sample_size: \(searcher.sampleSize)",
            "  deduplicate: \(searcher.deduplicate)",
            "  max_consecutive_rejections: \(searcher.maxConsecutiveRejections)",
            "  initial_samples: \(searcher.initialSamples)",
            "  proxies: [\(searcher.proxies.joined(separator: ", "))]",
            "  warm_start: \(searcher.warmStart)",
        ]
        if let q = searcher.prescreenQuantile { lines.append("  prescreen_quantile: \(q)") }
        lines += [
            "  proxy_batch_size: \(searcher.proxyBatchSize)",
            "  proxy_seed: \(searcher.proxySeed)",
            "budget:",
            "  candidates: \(budget.candidates)",
        ]
        if let w = budget.wallMinutes { lines.append("  wall_minutes: \(w)") }
        lines += [
            "training:",
            "  epochs: \(training.epochs)",
            "  batch_size: \(training.batchSize)",
            "  learning_rate: \(training.learningRate)",
            "  optimizer: \(training.optimizer)",
            "  momentum: \(training.momentum)",
            "  nesterov: \(training.nesterov)",
            "  weight_decay: \(training.weightDecay)",
            "  schedule: \(training.schedule)",
            "  warmup_epochs: \(training.warmupEpochs)",
            "  label_smoothing: \(training.labelSmoothing)",
            "constraints:",
            "  latency: \(constraints.latency)",
            "  latency_table: \(q(constraints.latencyTable))",
        ]
        if let p = constraints.maxParams { lines.append("  max_params: \(p)") }
        if let f = constraints.maxFlops { lines.append("  max_flops: \(n(f))") }
        if let l = constraints.maxLatencyMs { lines.append("  max_latency_ms: \(l)") }
        lines += ["executor:", "  kind: \(executor.kind)"]
        if let d = executor.sharedDirectory { lines.append("  shared_dir: \(q(d))") }
        if let p = executor.partition { lines.append("  partition: \(q(p))") }
        lines.append("  time_limit_minutes: \(executor.timeLimitMinutes)")
        lines.append("  cpus_per_task: \(executor.cpusPerTask)")
        lines.append("  max_retries: \(executor.maxRetries)")
        lines.append("  extra_args: [\(executor.extraArguments.map(q).joined(separator: ", "))]")
        if let w = executor.workerCommand { lines.append("  worker_command: [\(w.map(q).joined(separator: ", "))]") }
        lines += ["evaluator:", "  kind: \(evaluator.kind)"]
        if let t = evaluator.table { lines.append("  table: \(q(t))") }
        lines.append("  key_column: \(q(evaluator.keyColumn))")
        lines.append("  metric_column: \(q(evaluator.metricColumn))")
        lines.append("  report_columns: [\(evaluator.reportColumns.map(q).joined(separator: ", "))]")
        if let m = scheduler {
            lines += ["scheduler:", "  kind: \(m.kind)", "  min_epochs: \(m.minEpochs)", "  max_epochs: \(m.maxEpochs)", "  eta: \(m.eta)"]
            if let b = m.brackets { lines.append("  brackets: \(b)") }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
