//! The printed report: the scenario table, the measures, what one operation costs each side,
//! and the targets (see `targets.rs`). Scenarios add to it as they run; it prints once.

use crate::load::Report;
use crate::measure::Measured;
use crate::targets::Findings;

/// A rate a row is compared with, and its name in the table (`(a)`, `(b) cost 10`, …).
#[derive(Clone, Copy, Debug)]
pub struct Against {
    pub rate: f64,
    pub name: &'static str,
}

impl Against {
    pub fn new(rate: f64, name: &'static str) -> Against {
        Against { rate, name }
    }
}

struct Row {
    scenario: String,
    report: Report,
    against: Vec<Against>,
    /// Share of one core used by the server under test, Redis and the load generator.
    cpu: Option<[f64; 3]>,
}

/// What one operation costs Redis and the server, for sizing.
struct Cost {
    name: String,
    commands_per_op: f64,
    redis_usec: f64,
    server_usec: f64,
    ops: u64,
}

/// Everything the run found, in the order it was found.
#[derive(Default)]
pub struct Tables {
    rows: Vec<Row>,
    measures: Vec<(String, String)>,
    costs: Vec<Cost>,
    /// Redis µs per call of one command in one scenario (`INFO commandstats`).
    usec: Vec<(String, f64)>,
    /// The values the targets are judged on, and the ceilings later scenarios compare with.
    pub found: Findings,
}

impl Tables {
    /// Ceiling (a) as the details rounds measured it, if they ran.
    pub fn ceiling_a(&self) -> Vec<Against> {
        let a = self.found.ceiling_a.map(|rate| Against::new(rate, "(a)"));
        a.into_iter().collect()
    }

    /// A scenario row, compared with each of `against`.
    pub fn row(&mut self, scenario: &str, m: &Measured, against: &[Against]) {
        self.rows.push(Row {
            scenario: scenario.into(),
            report: m.report.clone(),
            against: against.to_vec(),
            cpu: Some(m.cpu()),
        });
    }

    /// A scenario row whose CPU was not measured on its own.
    pub fn row_without_cpu(&mut self, scenario: &str, m: &Measured, against: &[Against]) {
        self.row(scenario, m, against);
        if let Some(r) = self.rows.last_mut() {
            r.cpu = None;
        }
    }

    pub fn measure(&mut self, name: &str, value: String) {
        self.measures.push((name.into(), value));
    }

    /// Redis's µs per call of `cmd` (lower case) in `m`, named `name` in the measures.
    pub fn usec_per_call(&mut self, name: &str, m: &Measured, cmd: &str) {
        self.usec.push((name.into(), m.commands.usec_per_call(cmd)));
    }

    /// A row of the cost table: warm-up included, from the CPU time of the Redis and server
    /// processes (I/O included) and Redis's command counts.
    pub fn cost(&mut self, name: &str, m: &Measured) {
        self.costs.push(Cost {
            name: name.into(),
            commands_per_op: m.commands_per_op(),
            redis_usec: m.redis_usec_per_op(),
            server_usec: m.server_usec_per_op(),
            ops: m.report.all_ops,
        });
    }

    /// The four tables.
    pub fn print(&self) {
        self.print_rows();
        self.print_measures();
        self.print_costs();
        crate::targets::print(&self.found);
    }

    fn print_rows(&self) {
        println!(
            "| scenario | conns | req/s | p50 ms | p99 ms | errors | ratio to ceiling | CPU: server / redis / load generator |"
        );
        println!("|---|---:|---:|---:|---:|---:|---|---|");
        for r in &self.rows {
            let ratio: Vec<String> = r
                .against
                .iter()
                .map(|a| format!("{:.2} × {}", r.report.rate() / a.rate.max(1e-9), a.name))
                .collect();
            println!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} |",
                r.scenario,
                r.report.conns,
                r.report.rate(),
                r.report.p50_ms(),
                r.report.p99_ms(),
                r.report.errors,
                ratio.join("; "),
                r.cpu.map_or(String::new(), |[a, b, c]| format!(
                    "{:.0}% / {:.0}% / {:.0}%",
                    a * 100.0,
                    b * 100.0,
                    c * 100.0
                ))
            );
        }
    }

    fn print_measures(&self) {
        println!();
        println!("| measure | value |");
        println!("|---|---:|");
        for (name, value) in &self.measures {
            println!("| {name} | {value} |");
        }
        if !self.usec.is_empty() {
            let names: Vec<&str> = self.usec.iter().map(|(n, _)| n.as_str()).collect();
            let values: Vec<String> = self.usec.iter().map(|(_, v)| format!("{v:.2}")).collect();
            println!(
                "| Redis µs per call: {} | {} |",
                names.join(" / "),
                values.join(" / ")
            );
        }
    }

    /// Each `redis.call` of a script counts, as `INFO commandstats` counts it.
    fn print_costs(&self) {
        println!();
        println!(
            "| operation | Redis commands per op | Redis CPU µs per op | server CPU µs per op | ops measured |"
        );
        println!("|---|---:|---:|---:|---:|");
        for c in &self.costs {
            println!(
                "| {} | {:.3} | {:.2} | {:.1} | {} |",
                c.name, c.commands_per_op, c.redis_usec, c.server_usec, c.ops
            );
        }
    }
}
