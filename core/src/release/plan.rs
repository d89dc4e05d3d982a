//! A release's plan and its health analysis (API.md, "Releases"), as pure functions the
//! release controller drives: which named steps a blue-green release of N instances takes, how
//! many instances of each colour each step leaves running and routed, and whether a colour's
//! traffic counters show a breach.

use serde::{Deserialize, Serialize};

/// A release's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStatus {
    InProgress,
    Succeeded,
    RolledBack,
    Failed,
    Aborted,
}

/// A plan step's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
}

/// The named steps of a plan, in the contract's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StepName {
    /// The first deploy to an empty environment: N instances, routed.
    Start,
    StartGreen,
    Smoke,
    Shift,
    Monitor,
    Complete,
    Rollback,
}

/// Instances of one colour: how many run, how many of them take traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, Default)]
pub struct Colour {
    pub instances: u32,
    pub routed: u32,
}

/// What runs after a step: the old version (blue) and the new one (green).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, Default)]
pub struct Traffic {
    pub blue: Colour,
    pub green: Colour,
}

impl Traffic {
    /// Green's share of requests: its share of routed instances.
    pub fn green_share(&self) -> f64 {
        let routed = self.blue.routed + self.green.routed;
        if routed == 0 {
            0.0
        } else {
            f64::from(self.green.routed) / f64::from(routed)
        }
    }
}

impl ReleaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::InProgress => "in_progress",
            ReleaseStatus::Succeeded => "succeeded",
            ReleaseStatus::RolledBack => "rolled_back",
            ReleaseStatus::Failed => "failed",
            ReleaseStatus::Aborted => "aborted",
        }
    }

    pub fn parse(word: &str) -> Option<ReleaseStatus> {
        [
            ReleaseStatus::InProgress,
            ReleaseStatus::Succeeded,
            ReleaseStatus::RolledBack,
            ReleaseStatus::Failed,
            ReleaseStatus::Aborted,
        ]
        .into_iter()
        .find(|s| s.as_str() == word)
    }
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
        }
    }
}

impl StepName {
    pub fn as_str(self) -> &'static str {
        match self {
            StepName::Start => "start",
            StepName::StartGreen => "start-green",
            StepName::Smoke => "smoke",
            StepName::Shift => "shift",
            StepName::Monitor => "monitor",
            StepName::Complete => "complete",
            StepName::Rollback => "rollback",
        }
    }
}

/// Green's instances during `shift` for `n` in all: ceil(2n/3).
pub fn shifted_green(n: u32) -> u32 {
    (2 * n).div_ceil(3)
}

/// The steps of a release of `n` instances, with the traffic each leaves: blue-green when the
/// environment already runs a version, else one `start`.
pub fn plan(n: u32, environment_runs_a_version: bool) -> Vec<(StepName, Traffic)> {
    let n = n.max(1);
    let colour = |instances, routed| Colour { instances, routed };
    if !environment_runs_a_version {
        return vec![(
            StepName::Start,
            Traffic {
                blue: colour(0, 0),
                green: colour(n, n),
            },
        )];
    }
    let green = shifted_green(n);
    vec![
        (
            StepName::StartGreen,
            Traffic {
                blue: colour(n, n),
                green: colour(1, 0),
            },
        ),
        (
            StepName::Smoke,
            Traffic {
                blue: colour(n, n),
                green: colour(1, 0),
            },
        ),
        (
            StepName::Shift,
            Traffic {
                blue: colour(n - green, n - green),
                green: colour(green, green),
            },
        ),
        (
            StepName::Monitor,
            Traffic {
                blue: colour(n - green, n - green),
                green: colour(green, green),
            },
        ),
        // Blue is stopped but kept (its instances are 0; its version stays for rollback).
        (
            StepName::Complete,
            Traffic {
                blue: colour(0, 0),
                green: colour(n, n),
            },
        ),
    ]
}

/// What a rollback leaves: blue back to `n` and routed, green unrouted and stopped.
pub fn rolled_back(n: u32) -> Traffic {
    Traffic {
        blue: Colour {
            instances: n.max(1),
            routed: n.max(1),
        },
        green: Colour {
            instances: 0,
            routed: 0,
        },
    }
}

/// The health thresholds of the analysis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Lowest success rate (non-5xx answers over requests), 0 to 1.
    pub min_success_rate: f64,
    /// Highest p99 latency, in milliseconds.
    pub max_p99_ms: f64,
    /// Below this many requests the counters decide nothing (health checks alone do).
    pub min_requests: u64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            min_success_rate: 0.99,
            max_p99_ms: 500.0,
            min_requests: 50,
        }
    }
}

/// A colour's counters over the analysis window, from the router.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Counters {
    pub requests: u64,
    /// Answers with a 5xx status, or no answer at all.
    pub failures: u64,
    pub p99_ms: f64,
}

/// What the counters say.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Healthy,
    /// Too few requests to judge: "no traffic" is never taken for "healthy".
    TooFewRequests,
    /// With the reason, for the release's step detail.
    Breach(String),
}

/// Judges one colour's counters.
pub fn analyse(counters: &Counters, thresholds: &Thresholds) -> Verdict {
    if counters.requests < thresholds.min_requests {
        return Verdict::TooFewRequests;
    }
    let failures = counters.failures.min(counters.requests);
    let rate = (counters.requests - failures) as f64 / counters.requests as f64;
    if rate < thresholds.min_success_rate {
        return Verdict::Breach(format!(
            "success rate {:.2}% below {:.2}% ({failures} of {} requests failed)",
            rate * 100.0,
            thresholds.min_success_rate * 100.0,
            counters.requests
        ));
    }
    if counters.p99_ms > thresholds.max_p99_ms {
        return Verdict::Breach(format!(
            "p99 {:.0} ms above {:.0} ms",
            counters.p99_ms, thresholds.max_p99_ms
        ));
    }
    Verdict::Healthy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_instances_shift_four_green_two_blue() {
        let steps = plan(6, true);
        let names: Vec<StepName> = steps.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                StepName::StartGreen,
                StepName::Smoke,
                StepName::Shift,
                StepName::Monitor,
                StepName::Complete
            ]
        );
        let (_, start) = steps[0];
        assert_eq!(
            start.green,
            Colour {
                instances: 1,
                routed: 0
            }
        );
        assert_eq!(start.green_share(), 0.0, "green is smoke-tested unrouted");
        let (_, shift) = steps[2];
        assert_eq!(shift.green.routed, 4);
        assert_eq!(shift.blue.routed, 2);
        assert!((shift.green_share() - 2.0 / 3.0).abs() < 1e-9);
        let (_, done) = steps[4];
        assert_eq!(done.green.routed, 6);
        assert_eq!(done.blue.instances, 0);
        assert_eq!(rolled_back(6).blue.routed, 6);
        assert_eq!(rolled_back(6).green.instances, 0);
    }

    #[test]
    fn shares_follow_ceil_two_thirds_and_a_first_deploy_just_starts() {
        for (n, green) in [
            (1, 1),
            (2, 2),
            (3, 2),
            (4, 3),
            (5, 4),
            (6, 4),
            (9, 6),
            (10, 7),
        ] {
            assert_eq!(shifted_green(n), green, "n = {n}");
        }
        let first = plan(3, false);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].0, StepName::Start);
        assert_eq!(first[0].1.green.routed, 3);
        assert_eq!(
            serde_json::to_value(StepName::StartGreen).unwrap(),
            "start-green"
        );
        assert_eq!(
            serde_json::to_value(ReleaseStatus::RolledBack).unwrap(),
            "rolled_back"
        );
    }

    #[test]
    fn the_analysis_needs_traffic_and_names_the_breach() {
        let t = Thresholds::default();
        let quiet = Counters {
            requests: 10,
            failures: 10,
            p99_ms: 9000.0,
        };
        assert_eq!(analyse(&quiet, &t), Verdict::TooFewRequests);
        let fine = Counters {
            requests: 1000,
            failures: 10,
            p99_ms: 120.0,
        };
        assert_eq!(analyse(&fine, &t), Verdict::Healthy);
        let failing = Counters {
            requests: 1000,
            failures: 11,
            p99_ms: 120.0,
        };
        match analyse(&failing, &t) {
            Verdict::Breach(why) => assert!(why.contains("98.90%"), "{why}"),
            other => panic!("{other:?}"),
        }
        let slow = Counters {
            requests: 1000,
            failures: 0,
            p99_ms: 750.0,
        };
        match analyse(&slow, &t) {
            Verdict::Breach(why) => assert!(why.contains("p99 750 ms"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
