//! The issues' targets and the values they are judged on. A value stays `None` when its
//! scenario family did not run (`--only`), and its target prints "not run".

/// What the scenarios found that targets, or later scenarios, need.
#[derive(Default, Debug)]
pub struct Findings {
    /// Ceiling (a)'s rate, alternating with details; later rows compare with it.
    pub ceiling_a: Option<f64>,
    /// Ceiling (b): bcrypt verifications per second on every core, cost 10.
    pub bcrypt10: Option<f64>,
    /// Details (read lease) ÷ (a), ÷ (0), and its p99 ÷ (a)'s p99, both paced at one rate.
    pub details_vs_a: Option<f64>,
    pub details_vs_zero: Option<f64>,
    pub details_p99_vs_a: Option<f64>,
    /// Redis commands per validation, read lease, 64 connections.
    pub commands_per_validation: Option<f64>,
    /// One hop: lease details p50 ÷ reading-through p50.
    pub hop_p50_ratio: Option<f64>,
    /// Details with 100k ÷ 1k live sessions.
    pub big_ratio: Option<f64>,
    /// Redis commands per cost-4 login at the session cap.
    pub login_cap_commands: Option<f64>,
    /// Details p99 during a login flood ÷ idle.
    pub flood_ratio: Option<f64>,
    /// Refresh ÷ (c), 1024 connections.
    pub refresh_vs_c: Option<f64>,
    /// Cost-10 login ÷ (b).
    pub login_vs_b: Option<f64>,
    /// Redis bytes per live session.
    pub session_bytes: Option<f64>,
}

/// A target: the value it is judged on and its bound.
struct Target {
    name: &'static str,
    value: Option<f64>,
    /// At least the bound, or at most.
    at_least: bool,
    bound: f64,
    digits: usize,
}

fn at_least(name: &'static str, value: Option<f64>, bound: f64) -> Target {
    Target {
        name,
        value,
        at_least: true,
        bound,
        digits: 2,
    }
}

fn at_most(name: &'static str, value: Option<f64>, bound: f64) -> Target {
    Target {
        at_least: false,
        ..at_least(name, value, bound)
    }
}

/// The targets of the issues, in the order of the scenario table.
fn targets(f: &Findings) -> [Target; 11] {
    let kib = f.session_bytes.map(|b| b / 1024.0);
    [
        at_least("details ≥ 1.15 × ceiling (a)", f.details_vs_a, 1.15),
        at_least("details ≥ 0.85 × ceiling (0)", f.details_vs_zero, 0.85),
        at_most(
            "details p99 ≤ ceiling (a)'s p99 (both paced at one rate)",
            f.details_p99_vs_a,
            1.0,
        ),
        Target {
            digits: 4,
            ..at_most(
                "Redis commands per validation ≤ 0.01 (64 connections)",
                f.commands_per_validation,
                0.01,
            )
        },
        at_most(
            "one hop: lease details p50 ≤ 0.5 × reading-through p50",
            f.hop_p50_ratio,
            0.5,
        ),
        at_least(
            "details with 100k ÷ 1k live sessions ≥ 0.9",
            f.big_ratio,
            0.9,
        ),
        Target {
            digits: 1,
            ..at_most(
                "Redis commands per cost-4 login at the session cap ≤ 15",
                f.login_cap_commands,
                15.0,
            )
        },
        at_most(
            "details p99 during a login flood ≤ 2 × idle",
            f.flood_ratio,
            2.0,
        ),
        at_least(
            "refresh ≥ 0.57 × ceiling (c), 1024 connections",
            f.refresh_vs_c,
            0.57,
        ),
        at_least("login ≥ 0.9 × ceiling (b), cost 10", f.login_vs_b, 0.9),
        at_most("Redis KiB per live session ≤ 1", kib, 1.0),
    ]
}

/// Prints the targets table.
pub fn print(f: &Findings) {
    println!();
    println!("| target | this run |");
    println!("|---|---:|");
    for t in targets(f) {
        let shown = match t.value {
            None => "not run".to_string(),
            Some(v) => {
                let ok = if t.at_least {
                    v >= t.bound
                } else {
                    v <= t.bound
                };
                let digits = t.digits;
                format!("{v:.digits$} {}", if ok { "✔" } else { "✘" })
            }
        };
        println!("| {} | {shown} |", t.name);
    }
}
